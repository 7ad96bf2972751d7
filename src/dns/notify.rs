//! NOTIFY sender (RFC 1996): on each new zone serial, tell every `notifyTargets` secondary
//! over UDP, so it transfers at once instead of waiting for its SOA refresh timer.
//!
//! It owns a thread of its own, fed through a small channel by a snapshot publish hook
//! ([`Notifier::published`], which never blocks: a full channel drops the older serial, and
//! only the newest matters). Each NOTIFY (opcode 4, AA, question `<domain>. IN SOA`, the SOA
//! in the answer section; TSIG-signed with the first `tsigKeys` key when there is one) is
//! sent again after 1, 2, 4 and 8 s until the target answers with a NOTIFY response carrying
//! the same ID from the address it was sent to; after 5 sends it gives up and logs. A newer
//! serial replaces the one being retried. It never touches a DNS worker's socket, never
//! blocks a worker or the refresh thread, and stops within ~100 ms of shutdown.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::dns::tsig::{Signer, TsigKey};
use crate::dns::wire::{flag, opcode};
use crate::dns::xfr::{STATS, notify_message};
use crate::snapshot::{Snapshot, Zone, unix_now};

/// Sends per NOTIFY before giving up.
pub const ATTEMPTS: u32 = 5;
/// Wait for an answer after the first send; doubled after each retry (1, 2, 4, 8, 16 s).
pub const FIRST_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the thread looks at the shutdown flag and for a newer serial while waiting.
const TICK: Duration = Duration::from_millis(100);

/// One serial to announce.
#[derive(Debug, Clone)]
struct Job {
    zone: Zone,
    serial: u32,
}

/// The publish side: hand it each published snapshot.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: Sender<Job>,
    rx: Receiver<Job>,
}

impl Notifier {
    /// The publish hook: queues a NOTIFY when the serial moved (or on the first snapshot).
    /// Never blocks.
    pub fn published(&self, old: Option<&Snapshot>, new: &Snapshot) {
        if old.is_some_and(|o| o.serial == new.serial) {
            return;
        }
        let mut job = Job {
            zone: new.zone.clone(),
            serial: new.serial,
        };
        // Capacity 1: when a job is already waiting, replace it with the newer one.
        loop {
            match self.tx.try_send(job) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(j)) => {
                    let _ = self.rx.try_recv();
                    job = j;
                }
            }
        }
    }
}

/// Starts the NOTIFY thread for `targets`, signing with `key` when given.
pub fn spawn(
    targets: Vec<SocketAddr>,
    key: Option<TsigKey>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<(Notifier, JoinHandle<()>)> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let notifier = Notifier { tx, rx: rx.clone() };
    let join = std::thread::Builder::new()
        .name("dns-notify".into())
        .spawn(move || run(&targets, key.as_ref(), &rx, &shutdown))?;
    Ok((notifier, join))
}

fn run(targets: &[SocketAddr], key: Option<&TsigKey>, rx: &Receiver<Job>, shutdown: &AtomicBool) {
    let mut next: Option<Job> = None;
    while !shutdown.load(Ordering::Relaxed) {
        let job = match next.take() {
            Some(j) => j,
            None => match rx.recv_timeout(TICK) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        next = announce(&job, targets, key, rx, shutdown);
    }
}

/// A message ID that differs between NOTIFYs.
fn fresh_id() -> u16 {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(t) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n >> 16)) as u16
}

fn bind_for(target: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any)?;
    s.set_read_timeout(Some(TICK))?;
    Ok(s)
}

/// Sends the NOTIFY of `job` to every target until each answered or gave up. Returns a newer
/// job that arrived meanwhile (it supersedes this one).
fn announce(
    job: &Job,
    targets: &[SocketAddr],
    key: Option<&TsigKey>,
    rx: &Receiver<Job>,
    shutdown: &AtomicBool,
) -> Option<Job> {
    let id = fresh_id();
    let mut msg = notify_message(&job.zone, job.serial, id);
    if let Some(k) = key {
        Signer::request(k).sign(&mut msg, unix_now(), 0, &[]);
    }
    // One socket per address family in use.
    let mut v4 = None;
    let mut v6 = None;
    let mut pending: Vec<SocketAddr> = targets.to_vec();
    let mut timeout = FIRST_TIMEOUT;
    for attempt in 1..=ATTEMPTS {
        for &t in &pending {
            let slot = if t.is_ipv4() { &mut v4 } else { &mut v6 };
            if slot.is_none() {
                match bind_for(t) {
                    Ok(s) => *slot = Some(s),
                    Err(e) => {
                        log::warn!("notify: cannot open a UDP socket for {t}: {e}");
                        continue;
                    }
                }
            }
            if let Some(s) = slot.as_ref() {
                STATS.notify_sent.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = s.send_to(&msg, t) {
                    log::debug!("notify to {t}: {e}");
                }
            }
        }
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while !pending.is_empty() && Instant::now() < deadline {
            if shutdown.load(Ordering::Relaxed) {
                return None;
            }
            if let Ok(newer) = rx.try_recv() {
                return Some(newer);
            }
            for s in [v4.as_ref(), v6.as_ref()].into_iter().flatten() {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                let Some(pos) = pending.iter().position(|&t| t == from) else {
                    continue;
                };
                if !is_notify_response(&buf[..n], id) {
                    continue;
                }
                let rc = buf[3] & 0x0F;
                pending.swap_remove(pos);
                STATS.notify_acked.fetch_add(1, Ordering::Relaxed);
                if rc == 0 {
                    log::debug!("notify serial {} acknowledged by {from}", job.serial);
                } else {
                    log::warn!("notify serial {} to {from}: rcode {rc}", job.serial);
                }
            }
        }
        if pending.is_empty() {
            return None;
        }
        if attempt < ATTEMPTS {
            timeout *= 2;
        }
    }
    for t in &pending {
        STATS.notify_failed.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "notify serial {} to {t}: no answer after {ATTEMPTS} tries",
            job.serial
        );
    }
    None
}

/// A NOTIFY response (QR set, opcode NOTIFY) to our message `id`.
fn is_notify_response(pkt: &[u8], id: u16) -> bool {
    if pkt.len() < 12 || u16::from_be_bytes([pkt[0], pkt[1]]) != id {
        return false;
    }
    let flags = u16::from_be_bytes([pkt[2], pkt[3]]);
    flags & flag::QR != 0 && (flags & flag::OPCODE_MASK) >> 11 == u16::from(opcode::NOTIFY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_config;

    fn zone() -> Zone {
        Zone::from_config(&default_config())
    }

    /// A fake secondary: counts NOTIFYs, answers from the `answer_from`-th on.
    fn secondary(answer_from: usize) -> (SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let h = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                got.push(buf[..n].to_vec());
                if got.len() >= answer_from {
                    let mut reply = buf[..n].to_vec();
                    reply[2] |= 0x80;
                    s.send_to(&reply, from).unwrap();
                    break;
                }
            }
            got
        });
        (addr, h)
    }

    #[test]
    fn notify_is_retried_until_answered() {
        let (addr, h) = secondary(2);
        let shutdown = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _keep = tx;
        let job = Job {
            zone: zone(),
            serial: 4242,
        };
        let started = Instant::now();
        assert!(announce(&job, &[addr], None, &rx, &shutdown).is_none());
        let got = h.join().unwrap();
        assert_eq!(got.len(), 2, "one retry");
        assert!(started.elapsed() >= FIRST_TIMEOUT);
        let m = &got[0];
        assert_eq!(got[0], got[1], "a retry is the same message");
        let flags = u16::from_be_bytes([m[2], m[3]]);
        assert_eq!(flags, (4 << 11) | flag::AA);
        assert_eq!(&m[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
        // Question: mesos. SOA IN; answer: the SOA with the serial.
        assert_eq!(&m[12..23], b"\x05mesos\x00\x00\x06\x00\x01");
        let serial_at = m.len() - 20;
        assert_eq!(&m[serial_at..serial_at + 4], &4242u32.to_be_bytes());
    }

    #[test]
    fn newer_serial_supersedes_and_published_never_blocks() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let n = Notifier { tx, rx: rx.clone() };
        let mut s = crate::snapshot::Snapshot::new(Default::default(), zone(), String::new(), None);
        for serial in [1, 2, 3] {
            s.serial = serial;
            n.published(None, &s);
        }
        assert_eq!(rx.try_recv().unwrap().serial, 3);
        // Unchanged serial: nothing queued.
        n.published(Some(&s), &s);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn thread_stops_on_shutdown() {
        let shutdown = Arc::new(AtomicBool::new(false));
        let (_n, join) = spawn(vec![], None, shutdown.clone()).unwrap();
        shutdown.store(true, Ordering::Relaxed);
        join.join().unwrap();
    }
}
