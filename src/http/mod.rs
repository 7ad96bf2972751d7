//! The read-only HTTP server on `httplistener:httpport`: the original's `/v1/...` API plus
//! `/metrics`, `/health` and `/ready` (routes in [`api`]).
//!
//! Requests are parsed by `httparse`; this module owns only the connection handling and its
//! bounds: one short-lived thread per connection, at most `httpMaxConnections` (default
//! [`MAX_CONNS`]) at once (beyond that `503` at once), so a few slow clients cannot hold up
//! everyone else; a request head of at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers
//! (`431` beyond), a deadline for the whole head (`408` for slow clients), write timeouts,
//! and one request per connection, closed after the reply without resetting it (what the
//! client still sends is drained for up to [`DRAIN_DEADLINE`]). It never runs on, or slows, a
//! DNS worker: it only reads the published snapshot and the counters.

pub mod api;
pub mod prometheus;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use api::{ApiState, Response};

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers accepted.
pub const MAX_HEADERS: usize = 32;
/// Time a client has to send its whole request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Default of `httpMaxConnections`: most connections handled at once, each on its own thread
/// for at most [`HEAD_DEADLINE`] plus the write timeout.
pub const MAX_CONNS: usize = 256;
/// After a reply, how long a connection waits for the client to finish sending and close
/// (see `close_gracefully`) before it is closed anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(1);
/// The most request bytes read and dropped after a reply (a request body nobody reads).
pub const DRAIN_MAX: usize = 1 << 20;

/// HTTP counters (the HTTP path is not hot: shared atomics are fine here).
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Requests answered, any status.
    pub requests: AtomicU64,
    /// 4xx replies for malformed, oversized or slow requests.
    pub bad_requests: AtomicU64,
    /// Connections refused with 503 because `httpMaxConnections` were already open.
    pub overloaded: AtomicU64,
}

/// The running HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    /// Bound address.
    pub addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds and starts the acceptor and the connection pool.
    pub fn start(
        addr: SocketAddr,
        state: Arc<ApiState>,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let acceptor = std::thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || accept_loop(listener, state, &shutdown))?;
        let threads = vec![acceptor];
        Ok(HttpServer { addr, threads })
    }

    /// Waits for the acceptor (after the shutdown flag was set); connection threads end on
    /// their own within their deadlines.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<ApiState>, shutdown: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    let max_conns = state.config().http_max_connections;
    while !shutdown.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if active.load(Ordering::Relaxed) >= max_conns {
                    refuse(stream, &state);
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (conn_state, conn_active) = (state.clone(), active.clone());
                let spawned =
                    std::thread::Builder::new()
                        .name("http-conn".into())
                        .spawn(move || {
                            // Decrements even if the handler panics.
                            let _slot = Slot(conn_active);
                            handle(stream, &conn_state);
                        });
                if spawned.is_err() {
                    // The closure (and the stream with it) was dropped: the client sees a close.
                    active.fetch_sub(1, Ordering::Relaxed);
                    state.http.overloaded.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One of the `httpMaxConnections` connection slots, released on drop.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers `503` at once (every connection slot is taken). Runs on the accepting thread, so it
/// does not wait to drain the request like [`close_gracefully`]; the reply is small enough to
/// leave in one segment before the close.
fn refuse(mut stream: TcpStream, state: &ApiState) {
    state.http.overloaded.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = write_response(
        &mut stream,
        &Response::text(503, "503: Service Unavailable"),
        false,
    );
}

/// Reads one request head within the deadline and the size bound.
fn read_head(stream: &mut TcpStream, buf: &mut [u8]) -> Result<usize, u16> {
    let started = Instant::now();
    let mut len = 0;
    loop {
        let left = HEAD_DEADLINE.checked_sub(started.elapsed()).ok_or(408u16)?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|_| 400u16)?;
        if len == buf.len() {
            return Err(431);
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return Err(400),
            Ok(n) => {
                len += n;
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    return Ok(len);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(408);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(400),
        }
    }
}

fn handle(mut stream: TcpStream, state: &ApiState) {
    let (response, head_only) = read_request(&mut stream, state);
    state.http.requests.fetch_add(1, Ordering::Relaxed);
    if write_response(&mut stream, &response, head_only).is_ok() {
        close_gracefully(stream);
    }
}

/// Closes a connection after its reply without losing the reply. Closing a socket that still
/// holds unread request bytes (a body we never read, a pipelined request, the rest of an
/// oversized head) makes the kernel send a reset and drop whatever of the reply is still in the
/// send buffer: a large reply to a client that reads slowly was cut short. So: end our side
/// (FIN after the reply), then read and drop what the client still sends until it closes, for
/// at most [`DRAIN_DEADLINE`] and [`DRAIN_MAX`] bytes.
fn close_gracefully(mut stream: TcpStream) {
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + DRAIN_DEADLINE;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_MAX {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        if stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .is_err()
        {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Reads and routes one request: the response, and whether it is for `HEAD`.
fn read_request(stream: &mut TcpStream, state: &ApiState) -> (Response, bool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; MAX_HEAD];
    match read_head(stream, &mut buf) {
        Err(status) => {
            state.http.bad_requests.fetch_add(1, Ordering::Relaxed);
            (bad(status), false)
        }
        Ok(len) => {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[..len]) {
                Ok(httparse::Status::Complete(_)) => {
                    let method = req.method.unwrap_or("");
                    let path = req.path.unwrap_or("");
                    let accept = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("accept"))
                        .and_then(|h| std::str::from_utf8(h.value).ok());
                    let head_only = method == "HEAD";
                    let method = if head_only { "GET" } else { method };
                    (api::route(state, method, path, accept), head_only)
                }
                Ok(httparse::Status::Partial) => (bad(400), false),
                Err(httparse::Error::TooManyHeaders) => (bad(431), false),
                Err(_) => (bad(400), false),
            }
        }
    }
}

fn bad(status: u16) -> Response {
    let text = match status {
        408 => "408: Request Timeout",
        431 => "431: Request Header Fields Too Large",
        _ => "400: Bad Request",
    };
    Response::text(status, text)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn write_response(stream: &mut TcpStream, r: &Response, head_only: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&r.body)?;
    }
    stream.flush()
}
