// Throwaway experiment: a null responder with reply-pattern knobs.
use std::time::Instant;
const MAXB: usize = 256;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let get = |k: &str, d: usize| a.iter().position(|x| x == k).map(|i| a[i+1].parse().unwrap()).unwrap_or(d);
    let port = get("--port", 5400) as u16;
    let batch = get("--batch", 32).min(MAXB);
    let chunk = get("--chunk", MAXB);
    let single = a.iter().any(|x| x == "--single");
    let hold_us = get("--hold", 0) as u128;
    let spin = get("--spin", 0);
    let nap_us = get("--nap", 0) as i64;
    let thresh = get("--thresh", 8);
    if nap_us > 0 { unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1u64, 0u64, 0u64, 0u64); } }
    let mut last_n = 0usize;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let one: libc::c_int = 1;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, &one as *const _ as *const _, 4);
        let rb: libc::c_int = 8 << 20;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rb as *const _ as *const _, 4);
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &rb as *const _ as *const _, 4);
        let mut sin: libc::sockaddr_in = std::mem::zeroed();
        sin.sin_family = libc::AF_INET as u16;
        sin.sin_port = port.to_be();
        sin.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        if libc::bind(fd, &sin as *const _ as *const _, std::mem::size_of::<libc::sockaddr_in>() as u32) != 0 { panic!("bind"); }
        let mut bufs = vec![0u8; 4096 * MAXB];
        let mut hdrs: Vec<libc::mmsghdr> = vec![std::mem::zeroed(); MAXB];
        let mut iovs: Vec<libc::iovec> = vec![std::mem::zeroed(); MAXB];
        let mut addrs: Vec<libc::sockaddr_storage> = vec![std::mem::zeroed(); MAXB];
        if single {
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            loop {
                libc::poll(&mut pfd, 1, -1);
                for _ in 0..100 {
                    let mut sa: libc::sockaddr_storage = std::mem::zeroed();
                    let mut sl = std::mem::size_of::<libc::sockaddr_storage>() as u32;
                    let n = libc::recvfrom(fd, bufs.as_mut_ptr() as *mut _, 4096, libc::MSG_DONTWAIT, &mut sa as *mut _ as *mut _, &mut sl);
                    if n < 12 { break; }
                    bufs[2] |= 0x80;
                    libc::sendto(fd, bufs.as_ptr() as *const _, n as usize, 0, &sa as *const _ as *const _, sl);
                }
            }
        }
        let mut idle_spins = 0usize;
        loop {
            let setup = |hdrs: &mut Vec<libc::mmsghdr>, iovs: &mut Vec<libc::iovec>, addrs: &mut Vec<libc::sockaddr_storage>, bufs: &mut Vec<u8>, from: usize, to: usize| {
                for i in from..to {
                    iovs[i] = libc::iovec { iov_base: bufs.as_mut_ptr().add(i * 4096) as *mut _, iov_len: 4096 };
                    hdrs[i].msg_hdr.msg_name = &mut addrs[i] as *mut _ as *mut _;
                    hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
                    hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
                    hdrs[i].msg_hdr.msg_iovlen = 1;
                }
            };
            setup(&mut hdrs, &mut iovs, &mut addrs, &mut bufs, 0, batch);
            if nap_us > 0 && last_n >= thresh && last_n < batch {
                let ts = libc::timespec { tv_sec: 0, tv_nsec: nap_us * 1000 };
                libc::nanosleep(&ts, std::ptr::null_mut());
            }
            let flags = if spin > 0 && idle_spins < spin { libc::MSG_DONTWAIT } else { libc::MSG_WAITFORONE };
            let r = libc::recvmmsg(fd, hdrs.as_mut_ptr(), batch as u32, flags, std::ptr::null_mut());
            if r <= 0 { idle_spins += 1; continue; }
            idle_spins = 0;
            let mut n = r as usize;
            last_n = n;
            if hold_us > 0 && n < batch {
                let t = Instant::now();
                while n < batch && t.elapsed().as_micros() < hold_us {
                    setup(&mut hdrs, &mut iovs, &mut addrs, &mut bufs, n, batch);
                    let r = libc::recvmmsg(fd, hdrs.as_mut_ptr().add(n), (batch - n) as u32, libc::MSG_DONTWAIT, std::ptr::null_mut());
                    if r > 0 { n += r as usize; }
                }
            }
            for i in 0..n {
                let len = hdrs[i].msg_len as usize;
                bufs[i * 4096 + 2] |= 0x80;
                iovs[i].iov_len = len;
            }
            let mut s = 0;
            while s < n {
                let k = (n - s).min(chunk);
                let r = libc::sendmmsg(fd, hdrs.as_mut_ptr().add(s), k as u32, 0);
                if r <= 0 { break; }
                s += r as usize;
            }
        }
    }
}
