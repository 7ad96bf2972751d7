//! Batched UDP I/O for a worker: up to [`BATCH`] datagrams per `recvmmsg` and their replies
//! per `sendmmsg` (Linux), with `recv_from`/`send_to` elsewhere.
//!
//! All buffers are allocated once when the worker starts and reused for every batch; nothing
//! here allocates per packet. The unsafe code is confined to filling the `mmsghdr` arrays
//! with pointers into those buffers right before each syscall.

use std::io;
use std::net::UdpSocket;

/// Datagrams per syscall. 128 rather than 32 because a busy worker coalesces its receives
/// ([`crate::dns::coalesce`]): after a wait, one receive takes everything that gathered.
/// The reply buffers are mapped lazily, so a slot that is never used costs no memory.
pub const BATCH: usize = 128;
/// Largest query we read; a longer datagram is cut (the kernel reports it truncated) and its
/// question still parses if it fits. 4096 covers any real query with EDNS options.
const QUERY_BUF: usize = 4096;
/// Reply buffer per slot: a whole DNS message, so the answer path can write a full reply and
/// then truncate it to the client's limit.
const REPLY_BUF: usize = 65_535;

/// Reused buffers for one batch.
pub struct Batch {
    queries: Vec<u8>,
    replies: Vec<u8>,
    query_len: [usize; BATCH],
    reply_len: [usize; BATCH],
    #[cfg(target_os = "linux")]
    sys: Box<linux::Headers>,
    #[cfg(not(target_os = "linux"))]
    peers: [Option<std::net::SocketAddr>; BATCH],
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// Allocates the buffers (once per worker).
    pub fn new() -> Batch {
        Batch {
            queries: vec![0; QUERY_BUF * BATCH],
            replies: vec![0; REPLY_BUF * BATCH],
            query_len: [0; BATCH],
            reply_len: [0; BATCH],
            #[cfg(target_os = "linux")]
            sys: Box::new(linux::Headers::new()),
            #[cfg(not(target_os = "linux"))]
            peers: [None; BATCH],
        }
    }

    /// The query bytes of slot `i` and the reply buffer to write into.
    pub fn slot(&mut self, i: usize) -> (&[u8], &mut [u8]) {
        let q = self
            .queries
            .get(i * QUERY_BUF..i * QUERY_BUF + self.query_len[i].min(QUERY_BUF))
            .unwrap_or(&[]);
        let r = self
            .replies
            .get_mut(i * REPLY_BUF..(i + 1) * REPLY_BUF)
            .unwrap_or(&mut []);
        (q, r)
    }

    /// The client address of slot `i`.
    #[cfg(target_os = "linux")]
    pub fn peer(&self, i: usize) -> Option<std::net::SocketAddr> {
        self.sys.peer(i)
    }

    /// The client address of slot `i`.
    #[cfg(not(target_os = "linux"))]
    pub fn peer(&self, i: usize) -> Option<std::net::SocketAddr> {
        self.peers.get(i).copied().flatten()
    }

    /// Sets the reply length of slot `i` (0 = no reply).
    pub fn set_reply_len(&mut self, i: usize, len: usize) {
        if let Some(l) = self.reply_len.get_mut(i) {
            *l = len.min(REPLY_BUF);
        }
    }

    /// Receives at least one datagram (blocking up to the socket's read timeout).
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let n = self.sys.recv(sock, &mut self.queries, QUERY_BUF)?;
        for i in 0..n {
            self.query_len[i] = self.sys.received_len(i);
            self.reply_len[i] = 0;
        }
        Ok(n)
    }

    /// Sends the replies of the first `n` slots; returns how many were sent.
    #[cfg(target_os = "linux")]
    pub fn send(&mut self, sock: &UdpSocket, n: usize) -> io::Result<usize> {
        self.sys
            .send(sock, &mut self.replies, REPLY_BUF, &self.reply_len[..n])
    }

    /// Receives one datagram.
    #[cfg(not(target_os = "linux"))]
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let (len, peer) = sock.recv_from(&mut self.queries[..QUERY_BUF])?;
        self.query_len[0] = len;
        self.reply_len[0] = 0;
        self.peers[0] = Some(peer);
        Ok(1)
    }

    /// Sends the reply of slot 0.
    #[cfg(not(target_os = "linux"))]
    pub fn send(&mut self, sock: &UdpSocket, n: usize) -> io::Result<usize> {
        let mut sent = 0;
        for i in 0..n {
            if let (Some(peer), len) = (self.peers[i], self.reply_len[i]) {
                if len > 0 {
                    sock.send_to(&self.replies[i * REPLY_BUF..i * REPLY_BUF + len], peer)?;
                    sent += 1;
                }
            }
        }
        Ok(sent)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    use super::BATCH;

    /// The `mmsghdr`/`iovec`/address arrays. Boxed by the owner so the pointers stored in
    /// them stay valid while a syscall runs.
    pub(super) struct Headers {
        hdrs: [libc::mmsghdr; BATCH],
        iovs: [libc::iovec; BATCH],
        addrs: [libc::sockaddr_storage; BATCH],
        addr_lens: [libc::socklen_t; BATCH],
        /// For a send: which slot each header refers to.
        send_slots: [usize; BATCH],
    }

    impl Headers {
        pub(super) fn new() -> Headers {
            // SAFETY: these are plain C structs for which all-zero bytes is a valid value.
            unsafe { std::mem::zeroed() }
        }

        pub(super) fn recv(
            &mut self,
            sock: &UdpSocket,
            bufs: &mut [u8],
            each: usize,
        ) -> io::Result<usize> {
            for i in 0..BATCH {
                let Some(buf) = bufs.get_mut(i * each..(i + 1) * each) else {
                    return Err(io::Error::other("batch buffer too small"));
                };
                self.iovs[i] = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: each,
                };
                let hdr = &mut self.hdrs[i].msg_hdr;
                hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                hdr.msg_iov = &mut self.iovs[i];
                hdr.msg_iovlen = 1;
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
                hdr.msg_flags = 0;
                self.hdrs[i].msg_len = 0;
            }
            // SAFETY: every header points into `bufs`, `self.iovs` and `self.addrs`, which
            // outlive the call; the kernel writes at most `each` bytes per iovec.
            let n = unsafe {
                libc::recvmmsg(
                    sock.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            for i in 0..n as usize {
                self.addr_lens[i] = self.hdrs[i].msg_hdr.msg_namelen;
            }
            Ok(n as usize)
        }

        pub(super) fn peer(&self, i: usize) -> Option<std::net::SocketAddr> {
            let addr = self.addrs.get(i)?;
            match i32::from(addr.ss_family) {
                libc::AF_INET => {
                    // SAFETY: family AF_INET means the storage holds a sockaddr_in.
                    let sin = unsafe {
                        &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                    };
                    let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    Some((ip, u16::from_be(sin.sin_port)).into())
                }
                libc::AF_INET6 => {
                    // SAFETY: family AF_INET6 means the storage holds a sockaddr_in6.
                    let sin6 = unsafe {
                        &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                    };
                    let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    Some(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                        ip,
                        u16::from_be(sin6.sin6_port),
                        sin6.sin6_flowinfo,
                        sin6.sin6_scope_id,
                    )))
                }
                _ => None,
            }
        }

        pub(super) fn received_len(&self, i: usize) -> usize {
            self.hdrs.get(i).map_or(0, |h| h.msg_len as usize)
        }

        pub(super) fn send(
            &mut self,
            sock: &UdpSocket,
            bufs: &mut [u8],
            each: usize,
            lens: &[usize],
        ) -> io::Result<usize> {
            let mut count = 0;
            for (slot, &len) in lens.iter().enumerate() {
                if len == 0 {
                    continue;
                }
                let Some(buf) = bufs.get_mut(slot * each..slot * each + len) else {
                    continue;
                };
                self.iovs[count] = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: len,
                };
                self.send_slots[count] = slot;
                count += 1;
            }
            for k in 0..count {
                let slot = self.send_slots[k];
                let hdr = &mut self.hdrs[k].msg_hdr;
                hdr.msg_name = (&mut self.addrs[slot] as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = self.addr_lens[slot];
                hdr.msg_iov = &mut self.iovs[k];
                hdr.msg_iovlen = 1;
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
                hdr.msg_flags = 0;
            }
            let mut sent = 0;
            while sent < count {
                // SAFETY: headers `sent..count` point into `bufs`, `self.iovs` and
                // `self.addrs`, all alive for the call.
                let r = unsafe {
                    libc::sendmmsg(
                        sock.as_raw_fd(),
                        self.hdrs[sent..].as_mut_ptr(),
                        (count - sent) as libc::c_uint,
                        0,
                    )
                };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    // Skip the datagram that failed (e.g. an unreachable peer) and go on.
                    sent += 1;
                    if sent >= count {
                        return Err(e);
                    }
                    continue;
                }
                sent += r as usize;
            }
            Ok(count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn pair() -> (UdpSocket, UdpSocket) {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        server
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        client
            .connect(server.local_addr().expect("addr"))
            .expect("connect");
        (server, client)
    }

    #[test]
    fn recv_takes_what_is_queued_then_blocks_until_the_timeout() {
        let (server, client) = pair();
        let mut batch = Batch::new();
        for i in 0..5u8 {
            client.send(&[i; 12]).expect("send");
        }
        // Give loopback a moment to queue all five.
        std::thread::sleep(Duration::from_millis(20));
        let n = batch.recv(&server).expect("recv");
        assert_eq!(n, 5);
        for i in 0..5 {
            assert_eq!(batch.slot(i).0, &[i as u8; 12][..]);
            assert_eq!(
                batch.peer(i),
                Some(client.local_addr().expect("addr")),
                "slot {i}"
            );
        }
        // Nothing queued: the receive blocks until the socket's read timeout.
        let started = Instant::now();
        let err = batch.recv(&server).expect_err("nothing to receive");
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        assert!(started.elapsed() >= Duration::from_millis(150));
        // A datagram that arrives while the worker blocks is still received.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            client.send(b"late").expect("send");
        });
        assert_eq!(batch.recv(&server).expect("late datagram"), 1);
        assert_eq!(batch.slot(0).0, b"late");
        sender.join().expect("sender");
    }
}
