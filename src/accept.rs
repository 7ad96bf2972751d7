//! Waiting for the next connection on a non-blocking listener, for the two accept loops (DNS
//! over TCP and the HTTP API).
//!
//! [`next`] blocks in `poll(2)` until a client connects or [`STOP_CHECK`] passes, so a client
//! is accepted the moment it connects (the loops used to sleep 20 ms after every empty
//! `accept`, so a client could wait that long) and the loop still looks at its shutdown flag
//! every 20 ms. Never sleeps while a connection is pending.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The longest an idle accept loop waits before it looks at its shutdown flag again.
///
/// Why 20 ms and not longer: with 200 ms, a UDP worker sharing the core used about 12% more
/// CPU per query at 40,000 queries/s (all in the kernel; 3 alternating runs each, median
/// 3.43 s of worker CPU per 400k queries against 3.00 s at 20 ms and 3.06 s with the old
/// sleep loop, `loadtest/runs/2026-11-25-vm-accept-wakeups/`). A thread of another process
/// waking as often did not have that effect; why a thread of the same process does was not
/// found. Measured, not assumed: change it only with that run repeated.
pub const STOP_CHECK: Duration = Duration::from_millis(20);

/// The next connection on `listener` (which must be non-blocking), or `None` when none arrived
/// within [`STOP_CHECK`]. Errors are `accept`'s own (say, out of file descriptors); the caller
/// backs off.
pub fn next(listener: &TcpListener) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    match listener.accept() {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            wait_readable(listener, STOP_CHECK)?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Blocks until `listener` has a connection to accept or `timeout` passes.
#[cfg(unix)]
fn wait_readable(listener: &TcpListener, timeout: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd that outlives the call, and nfds is 1.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        // A signal is not a failure: the loop looks at its flag and comes back.
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn wait_readable(_listener: &TcpListener, _timeout: Duration) -> io::Result<()> {
    std::thread::sleep(Duration::from_millis(20));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> TcpListener {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        l
    }

    #[test]
    fn an_idle_listener_gives_none_and_a_connecting_client_is_accepted() {
        let l = listener();
        assert!(next(&l).expect("idle").is_none());
        let client = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (_stream, peer) = next(&l).expect("accept").expect("a connection");
        assert_eq!(peer, client.local_addr().expect("client addr"));
        assert!(next(&l).expect("idle again").is_none());
    }

    #[test]
    fn a_client_connecting_during_the_wait_ends_it_and_is_accepted_next() {
        let l = listener();
        let addr = l.local_addr().expect("addr");
        let client = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            TcpStream::connect(addr).expect("connect")
        });
        // The first calls may be waits that end before the connect (at most STOP_CHECK each);
        // the connection is taken by the first call after it.
        let mut got = None;
        for _ in 0..100 {
            if let Some(c) = next(&l).expect("next") {
                got = Some(c);
                break;
            }
        }
        let client = client.join().expect("client thread");
        let (_, peer) = got.expect("accepted within a hundred waits");
        assert_eq!(peer, client.local_addr().expect("client addr"));
    }
}
