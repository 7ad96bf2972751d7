//! Client allow-lists by address prefix, for `recursionAllowFrom`: which clients may have
//! names outside the domain forwarded upstream. A query from anyone else is answered REFUSED
//! by the worker (or TCP connection) before it reaches the forwarder, and counted.
//!
//! A prefix is kept as a 128-bit network and mask with IPv4 mapped into `::ffff:0:0/96`, so an
//! IPv4 client seen on a dual-stack socket as `::ffff:a.b.c.d` matches its IPv4 prefix, and
//! [`AllowList::permits`] is one mask-and-compare per prefix: no allocation, no branch on the
//! address family, safe on the query path. An empty list permits everyone (the original's
//! behaviour: recursion is limited only by `externalon`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dns::answer::{Disposition, Outcome};
use crate::dns::wire;

/// An address prefix: `10.0.0.0/8`, `2001:db8::/32`, or a bare address for one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network, IPv4 mapped into IPv6, host bits cleared.
    net: u128,
    /// The mask over the 128-bit form.
    mask: u128,
    /// The prefix length as written (0..=32 for IPv4, 0..=128 for IPv6).
    prefix: u8,
    /// Written as an IPv4 prefix.
    v4: bool,
}

/// `::ffff:0:0/96`, where IPv4 addresses live in the 128-bit form.
const V4_MAPPED: u128 = 0xffff_u128 << 32;

/// The 128-bit form of an address (IPv4 and IPv4-mapped IPv6 give the same value).
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => V4_MAPPED | u128::from(a.to_bits()),
        IpAddr::V6(a) => a.to_bits(),
    }
}

fn mask(len: u32) -> u128 {
    u128::MAX.checked_shl(128 - len).unwrap_or(0)
}

impl Cidr {
    /// Parses `ip/prefix` or a bare `ip`; host bits below the prefix are cleared. `None` for
    /// anything else (a name, a prefix longer than the address, a sign or space in the length).
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (ip, len) = match s.split_once('/') {
            Some((ip, l)) => (ip, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().ok()?;
        let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => max,
            Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse().ok().filter(|&p| p <= max)?
            }
            Some(_) => return None,
        };
        let wide = u32::from(prefix) + if ip.is_ipv4() { 96 } else { 0 };
        let mask = mask(wide);
        Some(Cidr {
            net: bits(ip) & mask,
            mask,
            prefix,
            v4: ip.is_ipv4(),
        })
    }

    /// True when `ip` is inside the prefix.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        bits(ip) & self.mask == self.net
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v4 {
            // The low 32 bits hold the IPv4 network; truncation is the point.
            write!(
                f,
                "{}/{}",
                Ipv4Addr::from_bits(self.net as u32),
                self.prefix
            )
        } else {
            write!(f, "{}/{}", Ipv6Addr::from_bits(self.net), self.prefix)
        }
    }
}

/// A list of prefixes; empty permits everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    prefixes: Vec<Cidr>,
}

impl AllowList {
    /// A list of `prefixes` (empty: everyone is permitted).
    pub fn new(prefixes: Vec<Cidr>) -> AllowList {
        AllowList { prefixes }
    }

    /// True when the list is empty or a prefix contains `ip`. Allocation-free.
    #[inline]
    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.prefixes.is_empty() {
            return true;
        }
        let b = bits(ip);
        self.prefixes.iter().any(|c| b & c.mask == c.net)
    }

    /// Like [`AllowList::permits`] for a peer that may be unknown (refused unless the list
    /// is empty).
    #[inline]
    pub fn permits_peer(&self, peer: Option<IpAddr>) -> bool {
        match peer {
            Some(ip) => self.permits(ip),
            None => self.prefixes.is_empty(),
        }
    }

    /// True when everyone is permitted.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

/// Writes the REFUSED reply for a query `pkt` whose sender may not recurse: the question and
/// any OPT record echoed, RA clear. Returns its length in `out` (0 if `out` is too small).
pub fn write_refused(pkt: &[u8], edns_udp_size: u16, out: &mut [u8]) -> usize {
    let q = wire::parse_query(pkt).ok();
    wire::write_error_reply_edns(pkt, q.as_ref(), wire::rcode::REFUSED, edns_udp_size, out)
}

/// Replaces the [`Disposition::Forward`] outcome of `pkt` (QTYPE `qtype`) with a REFUSED reply
/// written into `out`, for a client outside the allow-list.
pub fn refused_outcome(pkt: &[u8], qtype: u16, edns_udp_size: u16, out: &mut [u8]) -> Outcome {
    Outcome {
        len: write_refused(pkt, edns_udp_size, out),
        rcode: wire::rcode::REFUSED,
        qtype,
        truncated: false,
        disposition: Disposition::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        for (text, shown) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            (" 127.0.0.1 ", "127.0.0.1/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::1/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("::1", "::1/128"),
        ] {
            assert_eq!(Cidr::parse(text).unwrap().to_string(), shown, "{text}");
        }
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "example.com",
            "10.0.0/8",
            "10.0.0.0/8/8",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn contains_by_family_and_mapped() {
        let ten = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains(ip("10.255.0.1")));
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(ten.contains(ip("::ffff:10.1.1.1")), "mapped IPv4 peer");
        assert!(
            !ten.contains(ip("::a01:101")),
            "IPv4-compatible is not mapped"
        );
        let all4 = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all4.contains(ip("1.2.3.4")) && !all4.contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
    }

    #[test]
    fn allow_list_empty_permits_everyone() {
        let open = AllowList::default();
        assert!(open.is_empty() && open.permits(ip("192.0.2.1")) && open.permits_peer(None));
        let l = AllowList::new(vec![
            Cidr::parse("10.0.0.0/8").unwrap(),
            Cidr::parse("fd00::/8").unwrap(),
        ]);
        assert!(l.permits(ip("10.0.0.1")) && l.permits(ip("fd12::1")));
        assert!(!l.permits(ip("127.0.0.1")) && !l.permits_peer(None));
    }

    #[test]
    fn refused_reply_echoes_the_question() {
        let mut pkt = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        pkt.extend_from_slice(&[7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 1, 0, 1]);
        let mut out = [0u8; 512];
        let n = write_refused(&pkt, 1232, &mut out);
        assert_eq!(n, pkt.len());
        assert_eq!(out[..2], [0x12, 0x34]);
        assert_eq!(out[3] & 0x0f, wire::rcode::REFUSED);
        assert_eq!(out[2] & 0x80, 0x80, "QR");
        assert_eq!(out[3] & 0x80, 0, "RA clear");
        assert_eq!(out[12..n], pkt[12..]);
    }
}
