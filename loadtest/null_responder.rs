//! `mesos-dns-null-responder`: the "ceiling" for the load tests — a do-nothing UDP DNS
//! responder that is as cheap as a UDP server can be on Linux.
//!
//! Usage: `mesos-dns-null-responder [--port P] [--threads N] [--listen ADDR] [--coalesce-us U]`
//! (defaults: port 0 = pick a free one, 1 thread, 127.0.0.1, no coalescing).
//!
//! Every thread owns its own `SO_REUSEPORT` socket bound to the same address (the kernel
//! spreads clients over them), reads up to 32 datagrams per `recvmmsg`, and answers each one
//! in place with one `sendmmsg` per batch: the reply is the query itself with QR set, rcode
//! NOERROR, and ANCOUNT 0 (no answer section; the question and any other sections are echoed
//! unchanged). Datagrams shorter than a DNS header or with QR already set are dropped. There
//! is no parsing, no lookup and no allocation after start-up, so its peak rate is what the
//! kernel's loopback path and the load generator allow: `loadtest/run.sh` reports every real
//! server as a ratio to it. Socket buffers are requested as large as mesos-dns requests them
//! (8 MiB receive, 4 MiB send; the kernel caps them at `net.core.[rw]mem_max`).
//!
//! `--coalesce-us U` (U > 0) makes it coalesce its receives exactly as a mesos-dns worker with
//! `udpCoalesceMicros: U` does (the library's [`mesos_dns::dns::coalesce::Coalescer`], batches
//! of [`mesos_dns::dns::batch::BATCH`]): the ceiling for a server that coalesces, so that the
//! load tests can show how much of a peak comes from coalescing and how much from answering.
//! Without it the responder is the minimal one described above, with batches of 32.
//!
//! When every socket is bound it writes `listening PORT` to stderr, then serves until killed.
//! Linux only (std + libc, and the mesos-dns library for `--coalesce-us`). Bad arguments exit
//! with status 2, socket errors with 1.

use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::process::ExitCode;

/// Datagrams per `recvmmsg` / `sendmmsg` of the minimal responder.
const BATCH: usize = 32;
/// Datagrams per `recvmmsg` / `sendmmsg` when coalescing: the same as a mesos-dns worker.
const COALESCE_BATCH: usize = mesos_dns::dns::batch::BATCH;
/// Bytes read per datagram; longer queries are cut (and echoed cut).
const BUF: usize = 4096;
/// Requested `SO_RCVBUF`, the same as mesos-dns requests.
const RCVBUF: libc::c_int = 8 << 20;
/// Requested `SO_SNDBUF`, the same as mesos-dns requests.
const SNDBUF: libc::c_int = 4 << 20;

const USAGE: &str =
    "usage: mesos-dns-null-responder [--port P] [--threads N] [--listen ADDR] [--coalesce-us U]";

/// Parsed command line.
struct Args {
    addr: SocketAddr,
    threads: usize,
    /// Coalescing wait in µs; 0 = the minimal responder.
    coalesce_us: u64,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: u16 = 0;
    let mut threads: usize = 1;
    let mut coalesce_us: u64 = 0;
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let value = inline
            .or_else(|| {
                if matches!(flag.as_str(), "-h" | "--help") {
                    None
                } else {
                    argv.next()
                }
            })
            .unwrap_or_default();
        let bad = |what: &str| format!("{flag}: not {what}: {value:?}");
        match flag.as_str() {
            "--port" => port = value.parse().map_err(|_| bad("a port number"))?,
            "--threads" => {
                threads = value.parse().map_err(|_| bad("a thread count"))?;
                if threads == 0 || threads > 1024 {
                    return Err(bad("a thread count in 1..=1024"));
                }
            }
            "--listen" => ip = value.parse().map_err(|_| bad("an IP address"))?,
            "--coalesce-us" => {
                coalesce_us = value.parse().map_err(|_| bad("microseconds"))?;
                if coalesce_us > mesos_dns::dns::coalesce::MAX_WAIT_US {
                    return Err(bad("microseconds in 0..=1000"));
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(Args {
        addr: SocketAddr::new(ip, port),
        threads,
        coalesce_us,
    }))
}

/// The last OS error, prefixed with what failed.
fn os_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Encodes `addr` as a `sockaddr_storage` and its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Sets an integer socket option, ignoring failure (buffer sizes are best effort).
fn set_int_opt(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: fd is an open socket; value lives for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// Opens a UDP socket with `SO_REUSEPORT` and large buffers, bound to `addr`.
fn bind(addr: SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os_err("socket"));
    }
    // SAFETY: raw is a freshly opened descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if !set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1) {
        return Err(os_err("setsockopt(SO_REUSEPORT)"));
    }
    set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
    set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, SNDBUF);
    let (ss, len) = sockaddr(addr);
    // SAFETY: ss holds a valid sockaddr of length len.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if rc != 0 {
        return Err(os_err(&format!("bind {addr}")));
    }
    Ok(fd)
}

/// The port `fd` is bound to.
fn local_port(fd: &OwnedFd) -> io::Result<u16> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss and len are valid for writes of the given size.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(os_err("getsockname"));
    }
    // sin_port and sin6_port sit at the same offset, right after the family.
    // SAFETY: ss is at least as large and aligned as sockaddr_in.
    let sin = unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
    Ok(u16::from_be(sin.sin_port))
}

/// Turns the query in `msg` into its reply in place; false when it must be dropped.
fn make_reply(msg: &mut [u8]) -> bool {
    if msg.len() < 12 || msg[2] & 0x80 != 0 {
        return false;
    }
    msg[2] |= 0x80; // QR; opcode, AA, TC and RD are echoed.
    msg[3] &= 0xf0; // rcode NOERROR; RA, Z, AD and CD are echoed.
    msg[6] = 0; // ANCOUNT = 0
    msg[7] = 0;
    true
}

/// Serves `fd` forever: recvmmsg a batch, rewrite in place, sendmmsg the replies; with
/// `coalesce_us` > 0, wait as a busy mesos-dns worker waits before the next receive.
fn serve(fd: &OwnedFd, coalesce_us: u64) -> io::Error {
    let mut coalescer = mesos_dns::dns::coalesce::Coalescer::new(coalesce_us);
    let cap = if coalesce_us > 0 {
        COALESCE_BATCH
    } else {
        BATCH
    };
    if coalesce_us > 0 {
        // The same 1 µs timer slack as a coalescing worker.
        mesos_dns::dns::coalesce::precise_sleeps();
    }
    let mut bufs = vec![0u8; BUF * cap];
    // SAFETY (all zeroed() below): these libc structs are plain old data.
    let mut peers: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; cap];
    let mut iovs: Vec<libc::iovec> = (0..cap)
        .map(|i| libc::iovec {
            iov_base: bufs[i * BUF..].as_mut_ptr().cast(),
            iov_len: BUF,
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; cap];
    let mut out: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; cap];
    let mut out_iovs: Vec<libc::iovec> = iovs.clone();
    loop {
        for i in 0..cap {
            iovs[i].iov_len = BUF;
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut peers[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            hdrs[i].msg_len = 0;
        }
        // SAFETY: hdrs points at `cap` headers whose names and iovecs point into peers and
        // bufs, which outlive the call and are not otherwise borrowed during it.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                cap as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return e;
        }
        let mut k = 0;
        for i in 0..n as usize {
            let len = (hdrs[i].msg_len as usize).min(BUF);
            if !make_reply(&mut bufs[i * BUF..i * BUF + len]) {
                continue;
            }
            out_iovs[k] = libc::iovec {
                iov_base: bufs[i * BUF..].as_mut_ptr().cast(),
                iov_len: len,
            };
            let h = &mut out[k].msg_hdr;
            h.msg_name = hdrs[i].msg_hdr.msg_name;
            h.msg_namelen = hdrs[i].msg_hdr.msg_namelen;
            h.msg_iov = &mut out_iovs[k];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            k += 1;
        }
        let mut sent = 0;
        while sent < k {
            // SAFETY: out[sent..k] point into peers, out_iovs and bufs, all alive and
            // unaliased for the duration of the call.
            let m = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    out[sent..].as_mut_ptr(),
                    (k - sent) as libc::c_uint,
                    0,
                )
            };
            if m <= 0 {
                // A full send buffer or an unreachable peer: drop the rest of the batch,
                // like any UDP server under overload.
                if m < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the one that failed and try the others.
                sent += 1;
                continue;
            }
            sent += m as usize;
        }
        if let Some(wait) = coalescer.after_receive(n as usize, cap) {
            std::thread::sleep(wait);
        }
    }
}

fn run(args: &Args) -> io::Result<()> {
    let first = bind(args.addr)?;
    let port = local_port(&first)?;
    let mut sockets = vec![first];
    for _ in 1..args.threads {
        sockets.push(bind(SocketAddr::new(args.addr.ip(), port))?);
    }
    writeln!(io::stderr(), "listening {port}")?;
    // Socket 0 is served on this thread, the others on their own threads. Serving only
    // returns on a socket error, which ends the process.
    let mut sockets = sockets.into_iter();
    let main_socket = sockets
        .next()
        .ok_or_else(|| io::Error::other("no socket"))?;
    let coalesce_us = args.coalesce_us;
    for (i, fd) in sockets.enumerate() {
        std::thread::Builder::new()
            .name(format!("null-{}", i + 1))
            .spawn(move || {
                let e = serve(&fd, coalesce_us);
                let _ = writeln!(io::stderr(), "mesos-dns-null-responder: recvmmsg: {e}");
                std::process::exit(1);
            })?;
    }
    let e = serve(&main_socket, coalesce_us);
    Err(io::Error::new(e.kind(), format!("recvmmsg: {e}")))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            let _ = writeln!(io::stderr(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "mesos-dns-null-responder: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "mesos-dns-null-responder: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_sets_qr_noerror_and_clears_ancount() {
        let mut q = [
            0x12, 0x34, 0x01, 0x20, 0, 1, 0, 3, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
        ];
        q[3] |= 0x03; // a bogus rcode in a query must not survive
        assert!(make_reply(&mut q));
        assert_eq!(&q[..4], &[0x12, 0x34, 0x81, 0x20]);
        assert_eq!(&q[6..8], &[0, 0]);
        assert_eq!(&q[12..], &[1, b'a', 0, 0, 1, 0, 1]);
    }

    #[test]
    fn drops_short_datagrams_and_responses() {
        assert!(!make_reply(&mut [0; 11]));
        let mut r = [0u8; 12];
        r[2] = 0x80;
        assert!(!make_reply(&mut r));
    }

    #[test]
    fn parses_arguments() {
        let a = parse_args(
            ["--port", "5353", "--threads=2", "--listen", "::1"]
                .into_iter()
                .map(String::from),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.addr, "[::1]:5353".parse().unwrap());
        assert_eq!(a.threads, 2);
        assert_eq!(a.coalesce_us, 0);
        let a = parse_args(["--coalesce-us", "100"].into_iter().map(String::from));
        assert_eq!(a.unwrap().unwrap().coalesce_us, 100);
        assert!(parse_args(["--coalesce-us", "5000"].into_iter().map(String::from)).is_err());
        assert!(parse_args(["--threads", "0"].into_iter().map(String::from)).is_err());
        assert!(parse_args(["--bogus"].into_iter().map(String::from)).is_err());
        assert!(
            parse_args(["-h"].into_iter().map(String::from))
                .unwrap()
                .is_none()
        );
    }
}
