//! Zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995) of the Mesos zone over TCP, with
//! address access control (`transferAllowFrom`) and TSIG (`tsigKeys`, RFC 8945), plus the
//! small UDP rule for transfer queries that arrive over UDP.
//!
//! It owns the transferred zone's shape: the apex SOA (from the snapshot's zone parameters,
//! serial = the snapshot serial) first and last, the apex NS (→ `SOAMname`), then every
//! record [`crate::journal::zone_records`] selects, in messages of at most
//! [`MAX_MESSAGE`] bytes with compressed owner names (SRV targets are written in full, as
//! RFC 2782 asks). IXFR answers come from the [`Journal`] in the condensed RFC 1995 format,
//! with the whole zone (in IXFR form) when the client's serial is unknown or the delta would
//! be larger, and the SOA alone when the client is current.
//!
//! Policy, in order: a name that is not the apex, or a class other than IN → NOTAUTH (no such
//! zone here, as NSD does); a peer outside `transferAllowFrom` → REFUSED (the default list is
//! empty: every transfer is refused); with `tsigKeys`, an unsigned request → REFUSED and a bad
//! signature → NOTAUTH with the TSIG error; then SERVFAIL before the first snapshot. Over
//! UDP, AXFR gets NOTIMP (what NSD answers) and IXFR the current SOA alone (RFC 1995 §2: "use
//! TCP"), which tells nothing an SOA query does not.
//!
//! It runs only on a TCP connection's own thread (never on a UDP worker; the UDP rule is
//! allocation-free) and never holds a lock while writing to the network: the journal lock
//! is held only to clone the deltas it needs.

use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;

use crate::acl::Cidr;
use crate::config::Config;
use crate::dns::answer::Transport;
use crate::dns::tsig::{self, Check, Signer, TsigKey};
use crate::dns::wire::{
    self, MAX_NAME_LEN, Name, Query, ReplyWriter, Section, class, flag, rcode, rtype,
};
use crate::journal::{Journal, RecRef, zone_records};
use crate::snapshot::{Snapshot, Zone, unix_now};

/// Largest transfer message we build (NSD uses the same 16 KiB): every compression target is
/// then below the 14-bit pointer limit, and a slow reader never holds a huge buffer.
pub const MAX_MESSAGE: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------------

/// Process-wide transfer and NOTIFY counters (transfers and notifies are rare: plain shared
/// atomics are enough). Read by `/metrics` through [`render_metrics`].
#[derive(Debug)]
pub struct XfrStats {
    /// AXFR queries answered with the zone.
    pub axfr: AtomicU64,
    /// IXFR queries answered with the condensed differences.
    pub ixfr: AtomicU64,
    /// IXFR queries from a client already current (the SOA alone).
    pub ixfr_current: AtomicU64,
    /// IXFR queries answered with the whole zone (serial unknown or too old).
    pub ixfr_full: AtomicU64,
    /// Transfers refused by `transferAllowFrom`.
    pub refused_acl: AtomicU64,
    /// Transfers refused for TSIG (unsigned when required, bad key, signature or time).
    pub refused_tsig: AtomicU64,
    /// Bytes of transfer messages written (length prefixes included).
    pub bytes: AtomicU64,
    /// NOTIFY messages sent (retries included).
    pub notify_sent: AtomicU64,
    /// NOTIFYs acknowledged by their target.
    pub notify_acked: AtomicU64,
    /// NOTIFYs given up after every retry.
    pub notify_failed: AtomicU64,
}

/// The counters.
pub static STATS: XfrStats = XfrStats {
    axfr: AtomicU64::new(0),
    ixfr: AtomicU64::new(0),
    ixfr_current: AtomicU64::new(0),
    ixfr_full: AtomicU64::new(0),
    refused_acl: AtomicU64::new(0),
    refused_tsig: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    notify_sent: AtomicU64::new(0),
    notify_acked: AtomicU64::new(0),
    notify_failed: AtomicU64::new(0),
};

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Appends the transfer and NOTIFY families in the Prometheus text format.
pub fn render_metrics(out: &mut String) {
    use std::fmt::Write as _;
    let s = &STATS;
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP mesos_dns_xfr_total Zone transfers served, by kind (ixfr: differences; \
         ixfr_current: the client was current; ixfr_axfr: whole zone for an IXFR).\n\
         # TYPE mesos_dns_xfr_total counter"
    );
    for (t, c) in [
        ("axfr", &s.axfr),
        ("ixfr", &s.ixfr),
        ("ixfr_current", &s.ixfr_current),
        ("ixfr_axfr", &s.ixfr_full),
    ] {
        let _ = writeln!(out, "mesos_dns_xfr_total{{type=\"{t}\"}} {}", g(c));
    }
    let _ = writeln!(
        out,
        "# HELP mesos_dns_xfr_refused_total Zone transfers refused, by reason.\n\
         # TYPE mesos_dns_xfr_refused_total counter\n\
         mesos_dns_xfr_refused_total{{reason=\"acl\"}} {}\n\
         mesos_dns_xfr_refused_total{{reason=\"tsig\"}} {}",
        g(&s.refused_acl),
        g(&s.refused_tsig)
    );
    let _ = writeln!(
        out,
        "# HELP mesos_dns_xfr_bytes_total Bytes of zone transfer messages sent.\n\
         # TYPE mesos_dns_xfr_bytes_total counter\nmesos_dns_xfr_bytes_total {}",
        g(&s.bytes)
    );
    let _ = writeln!(
        out,
        "# HELP mesos_dns_notify_total NOTIFY messages, by outcome (sent counts retries).\n\
         # TYPE mesos_dns_notify_total counter"
    );
    for (r, c) in [
        ("sent", &s.notify_sent),
        ("acked", &s.notify_acked),
        ("failed", &s.notify_failed),
    ] {
        let _ = writeln!(out, "mesos_dns_notify_total{{result=\"{r}\"}} {}", g(c));
    }
}

// ---------------------------------------------------------------------------------------------
// Message building
// ---------------------------------------------------------------------------------------------

/// Text name → uncompressed wire name (the root for anything malformed, which validation
/// and [`crate::journal::transferable`] already exclude).
fn wire_of(text: &str) -> Vec<u8> {
    let mut w = [0u8; MAX_NAME_LEN];
    match wire::text_to_wire(text.as_bytes(), &mut w) {
        Some(n) => w[..n].to_vec(),
        None => vec![0],
    }
}

/// One transfer message: header, optional question, answer records; names compressed
/// against every earlier name of the message (a hash map: this is the slow path).
struct Msg {
    buf: Vec<u8>,
    comp: FxHashMap<Vec<u8>, u16>,
    answers: u16,
}

impl Msg {
    fn new(id: u16, flags: u16, question: Option<&[u8]>) -> Msg {
        let mut buf = Vec::with_capacity(MAX_MESSAGE);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        let mut m = Msg {
            buf,
            comp: FxHashMap::default(),
            answers: 0,
        };
        if let Some(q) = question {
            m.buf.extend_from_slice(q);
            m.buf[5] = 1;
            // The question name is a compression target only when it is lowercase, so that
            // owners keep the zone's case whatever case the client asked in.
            let name = &q[..q.len().saturating_sub(4)];
            if !name.iter().any(u8::is_ascii_uppercase) {
                m.register(wire::HEADER_LEN, name, name.len());
            }
        }
        m
    }

    fn register(&mut self, base: usize, w: &[u8], lit_end: usize) {
        let mut s = 0usize;
        while s < lit_end {
            let l = usize::from(w[s]);
            let off = base + s;
            if l == 0 || off > wire::MAX_POINTER_OFFSET {
                return;
            }
            self.comp.entry(w[s..].to_vec()).or_insert(off as u16);
            s += 1 + l;
        }
    }

    /// Writes a name, compressed against earlier names when `compress`.
    fn name(&mut self, w: &[u8], compress: bool) {
        let mut lit_end = w.len();
        let mut ptr = None;
        if compress {
            let mut s = 0usize;
            while s < w.len() && w[s] != 0 {
                if let Some(&off) = self.comp.get(&w[s..]) {
                    ptr = Some(off);
                    lit_end = s;
                    break;
                }
                s += 1 + usize::from(w[s]);
            }
        }
        let base = self.buf.len();
        self.buf.extend_from_slice(&w[..lit_end]);
        if let Some(off) = ptr {
            self.buf.extend_from_slice(&(0xC000 | off).to_be_bytes());
        }
        self.register(base, w, lit_end);
    }

    fn rr(&mut self, owner: &[u8], rr_type: u16, ttl: u32, rdata: impl FnOnce(&mut Msg)) {
        self.name(owner, true);
        self.buf.extend_from_slice(&rr_type.to_be_bytes());
        self.buf.extend_from_slice(&class::IN.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        rdata(self);
        let len = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
        self.answers += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf[6..8].copy_from_slice(&self.answers.to_be_bytes());
        self.buf
    }
}

/// The zone-wide names in wire form.
struct ZoneWire<'z> {
    zone: &'z Zone,
    apex: Vec<u8>,
    mname: Vec<u8>,
    rname: Vec<u8>,
}

impl<'z> ZoneWire<'z> {
    fn new(zone: &'z Zone) -> Self {
        ZoneWire {
            zone,
            apex: wire_of(&format!("{}.", zone.domain)),
            mname: wire_of(&zone.mname),
            rname: wire_of(&zone.rname),
        }
    }
}

/// One record of a transfer.
#[derive(Clone, Copy)]
enum Item<'a> {
    /// The apex SOA with this serial.
    Soa(u32),
    /// The apex NS.
    Ns,
    /// A zone record.
    Rec(&'a str, RecRef<'a>),
}

impl Item<'_> {
    /// An upper bound of its size in a message (uncompressed).
    fn max_len(&self, z: &ZoneWire<'_>) -> usize {
        match *self {
            Item::Soa(_) => z.apex.len() + 10 + z.mname.len() + z.rname.len() + 20,
            Item::Ns => z.apex.len() + 10 + z.mname.len(),
            Item::Rec(name, r) => {
                name.len()
                    + 2
                    + 10
                    + match r {
                        RecRef::A(_) => 4,
                        RecRef::Aaaa(_) => 16,
                        RecRef::Srv(t, _) => 6 + t.len() + 2,
                    }
            }
        }
    }

    fn write(&self, m: &mut Msg, z: &ZoneWire<'_>) {
        let ttl = z.zone.ttl;
        match *self {
            Item::Soa(serial) => m.rr(&z.apex, rtype::SOA, ttl, |m| {
                m.name(&z.mname, true);
                m.name(&z.rname, true);
                let zn = z.zone;
                for v in [serial, zn.refresh, zn.retry, zn.expire, zn.minimum] {
                    m.buf.extend_from_slice(&v.to_be_bytes());
                }
            }),
            Item::Ns => m.rr(&z.apex, rtype::NS, ttl, |m| m.name(&z.mname, true)),
            Item::Rec(name, r) => {
                let owner = wire_of(name);
                match r {
                    RecRef::A(ip) => m.rr(&owner, rtype::A, ttl, |m| {
                        m.buf.extend_from_slice(&ip.octets());
                    }),
                    RecRef::Aaaa(ip) => m.rr(&owner, rtype::AAAA, ttl, |m| {
                        m.buf.extend_from_slice(&ip.octets());
                    }),
                    RecRef::Srv(target, port) => {
                        let target = wire_of(target);
                        m.rr(&owner, rtype::SRV, ttl, |m| {
                            m.buf.extend_from_slice(&0u16.to_be_bytes());
                            m.buf.extend_from_slice(&z.zone.srv_weight.to_be_bytes());
                            m.buf.extend_from_slice(&port.to_be_bytes());
                            m.name(&target, false);
                        });
                    }
                }
            }
        }
    }
}

/// Writes a sequence of records as length-prefixed messages, signing each one when a
/// [`Signer`] is given.
struct Stream<'s, 'k, W: Write> {
    out: &'s mut W,
    zone: ZoneWire<'s>,
    id: u16,
    flags: u16,
    signer: Option<Signer<'k>>,
    limit: usize,
    msg: Msg,
    messages: u64,
    bytes: u64,
    records: u64,
}

impl<'s, 'k, W: Write> Stream<'s, 'k, W> {
    fn new(
        out: &'s mut W,
        zone: &'s Zone,
        q: &Query,
        question: &'s [u8],
        signer: Option<Signer<'k>>,
    ) -> Self {
        let flags = q.reply_flags() | flag::AA;
        let limit = MAX_MESSAGE - signer.as_ref().map_or(0, |s| tsig::rr_len(s.key()));
        Stream {
            out,
            zone: ZoneWire::new(zone),
            id: q.id,
            flags,
            signer,
            limit,
            msg: Msg::new(q.id, flags, Some(question)),
            messages: 0,
            bytes: 0,
            records: 0,
        }
    }

    fn push(&mut self, item: Item<'_>) -> io::Result<()> {
        if self.msg.answers > 0 && self.msg.buf.len() + item.max_len(&self.zone) > self.limit {
            self.flush()?;
        }
        item.write(&mut self.msg, &self.zone);
        self.records += 1;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let next = Msg::new(self.id, self.flags, None);
        let mut bytes = std::mem::replace(&mut self.msg, next).finish();
        if let Some(s) = &mut self.signer {
            s.sign(&mut bytes, unix_now(), 0, &[]);
        }
        write_framed(self.out, &bytes)?;
        self.messages += 1;
        self.bytes += bytes.len() as u64 + 2;
        Ok(())
    }

    /// Sends the last message; returns (messages, bytes, records).
    fn finish(mut self) -> io::Result<(u64, u64, u64)> {
        self.flush()?;
        self.out.flush()?;
        Ok((self.messages, self.bytes, self.records))
    }
}

fn write_framed<W: Write>(out: &mut W, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| io::Error::other("message over 64 KiB"))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(msg)
}

/// RFC 1982: `a` is the same serial as `b` or newer.
pub fn serial_ge(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

/// What a served transfer query became, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// AXFR: the whole zone.
    Axfr,
    /// IXFR answered with differences.
    Ixfr,
    /// IXFR from a current client: the SOA alone.
    IxfrCurrent,
    /// IXFR answered with the whole zone.
    IxfrFull,
    /// An error reply with this RCODE (extended TSIG errors are in the TSIG RR).
    Error(u8),
}

/// The zone transfer server: the policy and the journal. One per process, shared by every
/// TCP connection thread.
#[derive(Debug)]
pub struct Xfr {
    domain: String,
    allow: Vec<Cidr>,
    keys: Vec<TsigKey>,
    journal: Option<Arc<Journal>>,
}

impl Xfr {
    /// From the config: `transferAllowFrom` and `tsigKeys`; `journal` is the IXFR journal
    /// fed by the snapshot handle (None: every IXFR gets the whole zone).
    pub fn new(config: &Config, journal: Option<Arc<Journal>>) -> Xfr {
        Xfr {
            domain: config.domain.clone(),
            allow: config.transfer_allow_from.clone(),
            keys: config.tsig_keys.clone(),
            journal,
        }
    }

    /// True when `pkt` is an AXFR or IXFR query for a name at or below the domain, which
    /// [`Xfr::serve`] answers (everything else goes to the ordinary answer path).
    pub fn is_transfer(&self, pkt: &[u8]) -> bool {
        let Ok(q) = wire::parse_query(pkt) else {
            return false;
        };
        if !matches!(q.qtype, rtype::AXFR | rtype::IXFR) {
            return false;
        }
        let mut text = [0u8; 256];
        wire::name_to_text_lower(q.qname(), &mut text)
            .and_then(|n| std::str::from_utf8(&text[..n]).ok())
            .is_some_and(|t| crate::snapshot::in_domain(t, &self.domain))
    }

    /// Answers one AXFR/IXFR query from `peer`, writing length-prefixed messages to `out`.
    pub fn serve<W: Write>(
        &self,
        out: &mut W,
        pkt: &[u8],
        peer: IpAddr,
        snap: Option<&Snapshot>,
    ) -> io::Result<Outcome> {
        let Ok(q) = wire::parse_query(pkt) else {
            return Ok(Outcome::Error(rcode::FORMERR));
        };
        let question = q.question_bytes(pkt);
        let now = unix_now();
        let kind = if q.qtype == rtype::AXFR {
            "axfr"
        } else {
            "ixfr"
        };
        let error = |out: &mut W, rc: u8, signer| error_reply(out, &q, question, rc, signer, now);

        let mut text = [0u8; 256];
        let apex = wire::name_to_text_lower(q.qname(), &mut text)
            .is_some_and(|n| text[..n].strip_suffix(b".") == Some(self.domain.as_bytes()));
        if !apex || q.qclass != class::IN {
            log::debug!("{kind} from {peer}: not a zone here");
            return error(out, tsig::NOTAUTH, None);
        }
        if !self.allow.iter().any(|c| c.contains(peer)) {
            bump(&STATS.refused_acl, 1);
            log::debug!("{kind} from {peer} refused: not in transferAllowFrom");
            return error(out, rcode::REFUSED, None);
        }
        let signer = match tsig::verify(pkt, &self.keys, now) {
            Check::Unsigned if self.keys.is_empty() => None,
            Check::Unsigned => {
                bump(&STATS.refused_tsig, 1);
                log::info!("{kind} from {peer} refused: not TSIG-signed");
                return error(out, rcode::REFUSED, None);
            }
            Check::Valid(s) => Some(s),
            Check::Malformed => return error(out, rcode::FORMERR, None),
            Check::Rejected(r) => {
                bump(&STATS.refused_tsig, 1);
                log::info!("{kind} from {peer} refused: TSIG error {}", r.error);
                let mut bytes = Msg::new(q.id, q.reply_flags(), Some(question)).finish();
                bytes[3] = (bytes[3] & 0xF0) | tsig::NOTAUTH;
                match r.signer.clone() {
                    Some(mut s) => {
                        s.sign(&mut bytes, r.time_signed(), r.error, &tsig::time_other(now))
                    }
                    None => tsig::append_error(&mut bytes, &r),
                }
                write_framed(out, &bytes)?;
                out.flush()?;
                return Ok(Outcome::Error(tsig::NOTAUTH));
            }
        };
        let Some(snap) = snap else {
            return error(out, rcode::SERVFAIL, signer);
        };
        let serial = snap.serial;

        if q.qtype == rtype::AXFR {
            let mut s = Stream::new(out, &snap.zone, &q, question, signer);
            full_zone(&mut s, snap)?;
            let (m, b, r) = s.finish()?;
            bump(&STATS.axfr, 1);
            bump(&STATS.bytes, b);
            log::info!("axfr to {peer}: serial {serial}, {r} records, {m} messages, {b} bytes");
            return Ok(Outcome::Axfr);
        }

        let Some(client) = ixfr_client_serial(pkt) else {
            return error(out, rcode::FORMERR, signer);
        };
        let mut s = Stream::new(out, &snap.zone, &q, question, signer);
        let outcome = if serial_ge(client, serial) {
            s.push(Item::Soa(serial))?;
            Outcome::IxfrCurrent
        } else {
            let (a, aaaa, srv) = snap.records.counts();
            let changes = self
                .journal
                .as_ref()
                .and_then(|j| j.changes(client, serial))
                .filter(|c| c.deleted.len() + c.added.len() < a + aaaa + srv);
            match changes {
                Some(c) => {
                    // RFC 1995 §4, condensed: new SOA, old SOA, deletions, new SOA,
                    // additions, new SOA.
                    s.push(Item::Soa(serial))?;
                    s.push(Item::Soa(client))?;
                    for r in &c.deleted {
                        s.push(Item::Rec(&r.name, r.data.as_ref()))?;
                    }
                    s.push(Item::Soa(serial))?;
                    for r in &c.added {
                        s.push(Item::Rec(&r.name, r.data.as_ref()))?;
                    }
                    s.push(Item::Soa(serial))?;
                    Outcome::Ixfr
                }
                None => {
                    full_zone(&mut s, snap)?;
                    Outcome::IxfrFull
                }
            }
        };
        let (m, b, r) = s.finish()?;
        bump(&STATS.bytes, b);
        bump(
            match outcome {
                Outcome::Ixfr => &STATS.ixfr,
                Outcome::IxfrCurrent => &STATS.ixfr_current,
                _ => &STATS.ixfr_full,
            },
            1,
        );
        log::info!(
            "ixfr to {peer}: serial {client} -> {serial} ({outcome:?}), {r} records, {m} messages, {b} bytes"
        );
        Ok(outcome)
    }
}

/// A reply with no records: header, question and RCODE `rc`, signed when `signer` is given.
fn error_reply<W: Write>(
    out: &mut W,
    q: &Query,
    question: &[u8],
    rc: u8,
    signer: Option<Signer<'_>>,
    now: u64,
) -> io::Result<Outcome> {
    let mut bytes = Msg::new(q.id, q.reply_flags(), Some(question)).finish();
    bytes[3] = (bytes[3] & 0xF0) | (rc & 0x0F);
    if let Some(mut s) = signer {
        s.sign(&mut bytes, now, 0, &[]);
    }
    write_framed(out, &bytes)?;
    out.flush()?;
    Ok(Outcome::Error(rc))
}

/// SOA, NS, every zone record, SOA.
fn full_zone<W: Write>(s: &mut Stream<'_, '_, W>, snap: &Snapshot) -> io::Result<()> {
    s.push(Item::Soa(snap.serial))?;
    s.push(Item::Ns)?;
    for (name, r) in zone_records(snap) {
        s.push(Item::Rec(name, r))?;
    }
    s.push(Item::Soa(snap.serial))
}

/// The serial of the SOA in an IXFR query's authority section (RFC 1995 §3).
fn ixfr_client_serial(pkt: &[u8]) -> Option<u32> {
    let an = usize::from(u16::from_be_bytes(pkt.get(6..8)?.try_into().ok()?));
    let rrs = tsig::records(pkt)?;
    let soa = rrs.get(an).filter(|r| r.rr_type == rtype::SOA)?;
    let mut name = [0u8; MAX_NAME_LEN];
    let (p, _) = wire::read_name(pkt, soa.rdata.start, &mut name).ok()?;
    let (p, _) = wire::read_name(pkt, p, &mut name).ok()?;
    if p + 20 > soa.rdata.end {
        return None;
    }
    Some(u32::from_be_bytes(pkt.get(p..p + 4)?.try_into().ok()?))
}

/// The UDP rule (called by [`crate::dns::answer::answer`] for an in-domain AXFR or IXFR;
/// allocation-free): AXFR → NOTIMP, IXFR at the apex → the current SOA alone, IXFR below it
/// → NOTAUTH, no snapshot → SERVFAIL. Over TCP (only reached if the TCP path did not take
/// the query) → REFUSED. Returns (reply length, rcode).
pub fn answer_udp(
    pkt: &[u8],
    q: &Query,
    transport: Transport,
    snap: Option<&Snapshot>,
    domain: &str,
    edns_udp_size: u16,
    out: &mut [u8],
) -> (usize, u8) {
    let err = |rc: u8, out: &mut [u8]| {
        (
            wire::write_error_reply_edns(pkt, Some(q), rc, edns_udp_size, out),
            rc,
        )
    };
    if transport == Transport::Tcp {
        return err(rcode::REFUSED, out);
    }
    if q.qtype == rtype::AXFR {
        return err(rcode::NOTIMP, out);
    }
    let mut text = [0u8; 256];
    let apex = wire::name_to_text_lower(q.qname(), &mut text).is_some_and(|n| {
        text.get(..n).and_then(|t| t.strip_suffix(b".")) == Some(domain.as_bytes())
    });
    if !apex || q.qclass != class::IN {
        return err(tsig::NOTAUTH, out);
    }
    let Some(snap) = snap else {
        return err(rcode::SERVFAIL, out);
    };
    let zone = &snap.zone;
    let limit = match q.edns {
        None => usize::from(wire::MIN_UDP_PAYLOAD),
        Some(e) => usize::from(
            e.udp_size
                .clamp(wire::MIN_UDP_PAYLOAD, edns_udp_size.max(512)),
        ),
    };
    let mut w = ReplyWriter::new(out, limit);
    w.header(q.id, q.reply_flags() | flag::AA);
    if q.edns.is_some() {
        w.reserve_opt();
    }
    let soa = crate::dns::answer::zone_soa(snap);
    if w.copy_question(q.question_bytes(pkt)).is_err()
        || w.soa(Section::Answer, Name::Question, zone.ttl, &soa)
            .is_err()
    {
        return err(rcode::SERVFAIL, out);
    }
    if let Some(e) = q.edns {
        let _ = w.opt(edns_udp_size, 0, e.do_bit);
    }
    (w.finish(), rcode::NOERROR)
}

/// A NOTIFY (RFC 1996 §3.7) for `zone` at `serial`: opcode NOTIFY, AA, the question
/// `<domain>. IN SOA` and the apex SOA in the answer section. Unsigned.
pub fn notify_message(zone: &Zone, serial: u32, id: u16) -> Vec<u8> {
    let z = ZoneWire::new(zone);
    let mut question = z.apex.clone();
    question.extend_from_slice(&rtype::SOA.to_be_bytes());
    question.extend_from_slice(&class::IN.to_be_bytes());
    let flags = (u16::from(wire::opcode::NOTIFY) << 11) | flag::AA;
    let mut m = Msg::new(id, flags, Some(&question));
    Item::Soa(serial).write(&mut m, &z);
    m.finish()
}

#[cfg(test)]
mod tests;
