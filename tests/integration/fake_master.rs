//! A fake Mesos master: a tiny HTTP/1.1 server on a std `TcpListener` in a thread, serving
//! `GET /master/state` with a behaviour the test can swap at any time (a good document, an
//! error status, HTML, garbage, truncated JSON, a reply that hangs mid-body, or no listener
//! at all).
//!
//! It counts state requests so tests can wait for "N more polls" instead of sleeping, and it
//! rewrites the document's `leader` to itself (`master@<its ip>:<its port>`) unless told
//! otherwise, so the server's leader-follow logic stays on it. Every thread it starts ends
//! when the master is dropped.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the master does with the next state request.
#[derive(Debug, Clone)]
pub(crate) enum Behaviour {
    /// 200 with this JSON document (its `leader` rewritten, see [`FakeMaster::set_leader`]).
    Ok(Value),
    /// This status with this text body.
    Status(u16, String),
    /// 200 with an HTML page (a proxy's login page, say).
    Html,
    /// 200 with bytes that are not JSON.
    Garbage,
    /// 200 with the first half of the last good document (a complete HTTP reply).
    TruncatedJson,
    /// 200 with the headers and half of the last good document, then silence until the
    /// behaviour changes or the master is dropped (at most 30 s).
    Hang,
    /// The listening socket is closed: connections are refused.
    Down,
    /// 307 to this URL (Mesos masters redirect to the leader).
    Redirect(String),
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    /// Serialised body of the last `Ok` document (after the leader rewrite).
    last_good: Mutex<Vec<u8>>,
    /// `None`: rewrite `leader` to ourselves; `Some(l)`: set it to `l`.
    leader: Mutex<Option<String>>,
    requests: AtomicUsize,
    stop: AtomicBool,
    /// Bumped on every behaviour change, so a hanging reply knows when to end.
    generation: AtomicUsize,
}

/// A running fake master; stops its threads on drop.
pub(crate) struct FakeMaster {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FakeMaster {
    /// Starts on 127.0.0.1 with a free port.
    pub(crate) fn start(behaviour: Behaviour) -> FakeMaster {
        FakeMaster::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), behaviour)
            .expect("bind fake master")
    }

    /// Starts on `addr` (port 0 picks one). Fails if the address cannot be bound.
    pub(crate) fn start_on(addr: SocketAddr, behaviour: Behaviour) -> std::io::Result<FakeMaster> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour::Down),
            last_good: Mutex::new(Vec::new()),
            leader: Mutex::new(None),
            requests: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            generation: AtomicUsize::new(0),
        });
        let mut master = FakeMaster {
            addr,
            shared: shared.clone(),
            thread: None,
        };
        master.set(behaviour);
        let thread = std::thread::spawn(move || accept_loop(Some(listener), addr, &shared));
        master.thread = Some(thread);
        Ok(master)
    }

    /// Its `ip:port`.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its `ip:port` as the `masters` config entry.
    pub(crate) fn hostport(&self) -> String {
        self.addr.to_string()
    }

    /// Number of `GET /master/state` requests received so far.
    pub(crate) fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Sets the `leader` written into served documents (None: ourselves). Applies from the
    /// next [`FakeMaster::set`].
    pub(crate) fn set_leader(&self, leader: Option<String>) {
        *self.shared.leader.lock().expect("lock") = leader;
    }

    /// Swaps the behaviour.
    pub(crate) fn set(&self, behaviour: Behaviour) {
        if let Behaviour::Ok(doc) = &behaviour {
            let mut doc = doc.clone();
            let leader = self
                .shared
                .leader
                .lock()
                .expect("lock")
                .clone()
                .unwrap_or_else(|| format!("master@{}", self.addr));
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("leader".into(), Value::String(leader));
            }
            *self.shared.last_good.lock().expect("lock") =
                serde_json::to_vec(&doc).expect("serialise state");
        }
        *self.shared.behaviour.lock().expect("lock") = behaviour;
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits (bounded) until `n` more state requests than `since` have arrived.
    pub(crate) fn wait_requests(&self, since: usize, n: usize, timeout: Duration) -> bool {
        crate::harness::wait_until(timeout, || self.requests() >= since + n)
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(mut listener: Option<TcpListener>, addr: SocketAddr, shared: &Arc<Shared>) {
    if let Some(l) = &listener {
        l.set_nonblocking(true).expect("nonblocking");
    }
    while !shared.stop.load(Ordering::SeqCst) {
        let down = matches!(*shared.behaviour.lock().expect("lock"), Behaviour::Down);
        if down {
            // Close the socket so connections are refused; rebind the same address later.
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        if listener.is_none() {
            match TcpListener::bind(addr) {
                Ok(l) => {
                    l.set_nonblocking(true).expect("nonblocking");
                    listener = Some(l);
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        let Some(l) = &listener else { continue };
        match l.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                std::thread::spawn(move || handle(stream, &shared));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn handle(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let path = text.split_whitespace().nth(1).unwrap_or("");
    if !text.starts_with("GET ") || path != "/master/state" {
        let _ = respond(&mut stream, 404, "text/plain", b"not found");
        return;
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let behaviour = shared.behaviour.lock().expect("lock").clone();
    let good = shared.last_good.lock().expect("lock").clone();
    match behaviour {
        Behaviour::Ok(_) => {
            let _ = respond(&mut stream, 200, "application/json", &good);
        }
        Behaviour::Status(code, body) => {
            let _ = respond(&mut stream, code, "text/plain", body.as_bytes());
        }
        Behaviour::Html => {
            let page = b"<!DOCTYPE html><html><head><title>Login</title></head><body>Please log in</body></html>";
            let _ = respond(&mut stream, 200, "text/html", page);
        }
        Behaviour::Garbage => {
            let _ = respond(
                &mut stream,
                200,
                "application/json",
                b"\x00\x01garbage\xff not json",
            );
        }
        Behaviour::TruncatedJson => {
            let _ = respond(
                &mut stream,
                200,
                "application/json",
                &good[..good.len() / 2],
            );
        }
        Behaviour::Hang => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                good.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&good[..good.len() / 2]);
            let _ = stream.flush();
            let generation = shared.generation.load(Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline
                && !shared.stop.load(Ordering::SeqCst)
                && shared.generation.load(Ordering::SeqCst) == generation
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Behaviour::Redirect(url) => {
            let head = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
        }
        Behaviour::Down => {}
    }
}

fn respond(stream: &mut TcpStream, code: u16, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Binds two fake masters on 127.0.0.2 and 127.0.0.3 with the same port, or None when this
/// host cannot (no 127/8 aliases, or the port is taken on the second address).
pub(crate) fn pair_same_port(a: Behaviour, b: Behaviour) -> Option<(FakeMaster, FakeMaster)> {
    for _ in 0..8 {
        let first = FakeMaster::start_on(SocketAddr::from(([127, 0, 0, 2], 0)), a.clone()).ok()?;
        let port = first.addr().port();
        let ip: IpAddr = [127, 0, 0, 3].into();
        if let Ok(second) = FakeMaster::start_on(SocketAddr::new(ip, port), b.clone()) {
            return Some((first, second));
        }
    }
    None
}
