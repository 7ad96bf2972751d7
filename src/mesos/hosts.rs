//! Host name lookups and local interface addresses for record generation: the system
//! implementation of [`HostResolver`]. This is the only place the refresh path resolves
//! names; it runs on the refresh thread, never on a worker.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use crate::records::generator::HostResolver;

/// Resolves with the system resolver (`getaddrinfo`) and lists interfaces with `getifaddrs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemHosts;

impl HostResolver for SystemHosts {
    fn resolve(&self, host: &str) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        if let Ok(addrs) = (host, 0u16).to_socket_addrs() {
            for a in addrs {
                if !out.contains(&a.ip()) {
                    out.push(a.ip());
                }
            }
        }
        out
    }

    fn local_addrs(&self) -> Vec<IpAddr> {
        interface_addrs()
    }
}

/// Every address of every local interface (loopback included).
pub fn interface_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `ifap` with a list we free with freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family tells its real type.
            let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
            if family == libc::AF_INET {
                // SAFETY: family AF_INET means the storage is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: family AF_INET6 means the storage is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `ifap` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(ifap) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_and_localhost_resolves() {
        assert!(interface_addrs().iter().any(|ip| ip.is_loopback()));
        assert!(
            SystemHosts
                .resolve("localhost")
                .iter()
                .any(|ip| ip.is_loopback())
        );
        assert!(SystemHosts.resolve("no-such-host.invalid").is_empty());
    }
}
