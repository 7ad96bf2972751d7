//! Fetching the state document: from a file (`stateFile`) or from the masters with the
//! original's algorithm (behaviour reference §5.3) plus product.md's fixes (HTTP status checked,
//! body capped at `stateMaxBytes`, certificates verified by default).
//!
//! The HTTP client is `ureq` 3 (rustls + ring): it is the sync client that does HTTPS with a
//! custom CA, no verification on request, **and** a client certificate (mTLS), which the
//! original supports through `certFile`/`keyFile`. The body is parsed straight from the socket
//! by serde_json through a size-limiting reader, so the raw document is never held in memory.
//! Requests carry the original's headers (`User-Agent: Mesos-DNS`, `Content-Type:
//! application/json`) plus Basic or IAM `Authorization`; an IAM token that a master refuses with
//! 401 is dropped and the request retried once after a fresh login. Every failure is a typed
//! [`FetchError`] with a short `kind` for metrics; nothing here panics. Runs on the refresh
//! thread only.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::mesos::auth::{Auth, AuthError};
use crate::mesos::state::{self, State, StateError};
use crate::mesos::tls::{self, TlsError};

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The masters list is empty.
    #[error("no masters given to fetch state")]
    NoMasters,
    /// Connecting, sending or reading failed (including timeouts).
    #[error("GET {url}: {}", describe_http(source))]
    Http {
        /// The URL tried.
        url: String,
        /// The client's error.
        source: ureq::Error,
    },
    /// The master answered with a non-2xx status.
    #[error("GET {url}: HTTP status {status}")]
    Status {
        /// The URL tried.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body was larger than `stateMaxBytes`.
    #[error("{source_name}: state document larger than stateMaxBytes ({limit} bytes)")]
    TooLarge {
        /// URL or path.
        source_name: String,
        /// The limit.
        limit: u64,
    },
    /// Reading the body failed part-way (timeout, connection reset): not a JSON problem.
    #[error("{source_name}: reading the state document: {}", describe_io(source))]
    Read {
        /// URL or path.
        source_name: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The state file could not be read.
    #[error("reading {path}: {source}")]
    File {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The body is not a usable state document.
    #[error("{source_name}: {source}")]
    State {
        /// URL or path.
        source_name: String,
        /// What is wrong with it.
        source: StateError,
    },
    /// The IAM login failed ("IAM authentication failed").
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Why the fetcher cannot be built from the config (a config problem: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A certificate or key file is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The IAM file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The text of a transport error; timeouts say "timed out" whatever layer reported them.
fn describe_io(e: &io::Error) -> String {
    if io_is_timeout(e) {
        format!("timed out (stateTimeoutSeconds): {e}")
    } else {
        e.to_string()
    }
}

fn describe_http(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("timed out (stateTimeoutSeconds): {e}"),
        ureq::Error::Io(io) => describe_io(io),
        other => other.to_string(),
    }
}

/// Is this I/O error (possibly wrapping a client error) a timeout?
fn io_is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) || e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

impl FetchError {
    /// A short, stable name of the failure kind, used as a metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::NoMasters => "no_masters",
            FetchError::Http { source, .. } => match source {
                ureq::Error::Timeout(_) => "timeout",
                ureq::Error::Io(e) if io_is_timeout(e) => "timeout",
                ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => "tls",
                ureq::Error::Io(e)
                    if e.get_ref()
                        .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some()) =>
                {
                    "tls"
                }
                _ => "connect",
            },
            FetchError::Status { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Read { source, .. } if io_is_timeout(source) => "timeout",
            FetchError::Read { .. } => "read",
            FetchError::File { .. } => "file",
            FetchError::State {
                source: StateError::Json(_),
                ..
            } => "bad_json",
            FetchError::State {
                source: StateError::NoLeader,
                ..
            } => "no_leader",
            FetchError::Auth(_) => "iam_auth",
        }
    }
}

/// Where state comes from and how to fetch it.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// `stateFile`, when set: read it instead of any master.
    pub state_file: Option<PathBuf>,
    /// `mesosHTTPSOn`.
    pub https: bool,
    /// Whole-request timeout (`stateTimeoutSeconds`).
    pub timeout: Duration,
    /// `stateMaxBytes`.
    pub max_bytes: u64,
    /// How requests authenticate.
    pub auth: Arc<Auth>,
    agent: ureq::Agent,
}

/// A fetched and parsed document.
#[derive(Debug)]
pub struct Fetched {
    /// The parsed state.
    pub state: State,
    /// Body size in bytes.
    pub bytes: u64,
    /// Where it came from (URL or path).
    pub source: String,
}

/// Reads at most `limit` bytes and fails with `InvalidData` past that, so serde_json stops.
/// The most one `read` asks of the file or socket. `read_to_end` would otherwise hand the
/// kernel the whole remaining buffer: one `read(2)` of a 200 MB state file copies for tens of
/// milliseconds inside the kernel, and a kernel built without preemption (`PREEMPT_NONE`, the
/// common server setting) does not switch to a woken DNS worker on the same core until that
/// copy ends. Measured with a 223 MB file (`loadtest/runs/2026-11-25-vm-refresh-diagnosis/`): one
/// big read beside a worker at 40k QPS raised its p99 from ~0.2 ms to 7.6 ms; 1 MiB reads left
/// it unchanged. 64 KiB copies in ~10 µs and costs ~3,600 syscalls (a few ms) for that file;
/// against 256 KiB it lowered the p99 beside a 100k-task refresh every second a little in each
/// of three pairs of runs (`loadtest/runs/2026-11-25-vm-thp/read-chunk/`).
const READ_CHUNK: usize = 64 * 1024;

struct Capped<R> {
    inner: R,
    left: u64,
    read: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Probe one byte: only a body longer than the limit is an error.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded = true;
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "state document too large",
                    ))
                }
            };
        }
        let want = buf
            .len()
            .min(READ_CHUNK)
            .min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

/// The HTTP agent: one new connection per request (the original disabled keep-alives), no
/// proxy from the environment, status codes handled here, the original's headers.
fn agent(timeout: Duration, tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
        .http_status_as_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .proxy(None)
        .user_agent("Mesos-DNS")
        .accept(ureq::config::AutoHeaderValue::None)
        .max_redirects(10)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .tls_config(tls)
        .build()
        .into()
}

impl Fetcher {
    /// The fetcher for `config`: reads and checks the certificate, key and IAM files.
    pub fn new(config: &Config) -> Result<Fetcher, SetupError> {
        let timeout = Duration::from_secs(config.state_timeout_seconds.max(1));
        Ok(Fetcher {
            state_file: config.state_file.clone(),
            https: config.mesos_https_on,
            timeout,
            max_bytes: config.state_max_bytes,
            auth: Arc::new(Auth::from_config(config)?),
            agent: agent(timeout, tls::tls_config(config)?),
        })
    }

    /// Fetches the state: from the file if set, else from `masters` (first = presumed leader,
    /// `""` = unknown), following the reported leader once.
    pub fn fetch(&self, masters: &[String]) -> Result<Fetched, FetchError> {
        if let Some(path) = &self.state_file {
            return self.fetch_file(path);
        }
        let Some((first, rest)) = masters.split_first() else {
            return Err(FetchError::NoMasters);
        };
        let mut last_err = FetchError::NoMasters;
        if !first.is_empty() {
            match self.fetch_from(first) {
                Ok(f) => return Ok(f),
                Err(e) if rest.is_empty() => return Err(e),
                Err(e) => last_err = e,
            }
        }
        for m in rest {
            match self.fetch_from(m) {
                Ok(f) => return Ok(f),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn fetch_file(&self, path: &PathBuf) -> Result<Fetched, FetchError> {
        let file_err = |source| FetchError::File {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(file_err)?;
        let source_name = path.display().to_string();
        let hint = file.metadata().map_or(0, |m| m.len());
        let mut reader = Capped {
            inner: file,
            left: self.max_bytes,
            read: 0,
            exceeded: false,
        };
        let parsed = parse_capped(&mut reader, hint, self.max_bytes);
        self.finish(parsed, reader.read, reader.exceeded, source_name)
    }

    fn finish(
        &self,
        parsed: Result<State, StateError>,
        bytes: u64,
        exceeded: bool,
        source_name: String,
    ) -> Result<Fetched, FetchError> {
        if exceeded {
            return Err(FetchError::TooLarge {
                source_name,
                limit: self.max_bytes,
            });
        }
        match parsed {
            // serde_json reports a failed read of the body as its own error; it is a transport
            // failure (a master hanging mid-body is a timeout), not malformed JSON.
            Err(StateError::Json(e)) if e.is_io() => Err(FetchError::Read {
                source_name,
                source: e.into(),
            }),
            Ok(state) => Ok(Fetched {
                state,
                bytes,
                source: source_name,
            }),
            Err(source) => Err(FetchError::State {
                source_name,
                source,
            }),
        }
    }

    /// One master `host:port`: GET, then follow a different reported leader once.
    fn fetch_from(&self, hostport: &str) -> Result<Fetched, FetchError> {
        let fetched = self.get(hostport)?;
        let leader = fetched.state.leader.as_str();
        let leader_host = leader
            .split_once('@')
            .and_then(|(_, hp)| state::split_host_port(hp))
            .map(|(h, _)| h.to_owned());
        let (contacted_host, port) = match state::split_host_port(hostport) {
            Some((h, p)) => (h.to_owned(), p),
            None => return Ok(fetched),
        };
        match leader_host {
            Some(lh) if lh != contacted_host => {
                // The original re-fetches from the leader's host on the *contacted* port.
                let target = if lh.contains(':') {
                    format!("[{lh}]:{port}")
                } else {
                    format!("{lh}:{port}")
                };
                self.get(&target)
            }
            _ => Ok(fetched),
        }
    }

    /// The `Authorization` value for the next request, if any.
    fn authorization(&self) -> Result<Option<String>, FetchError> {
        Ok(match &*self.auth {
            Auth::None => None,
            Auth::Basic(h) => Some(h.clone()),
            Auth::Iam(iam) => Some(iam.header(&self.agent)?),
        })
    }

    fn get(&self, hostport: &str) -> Result<Fetched, FetchError> {
        let scheme = if self.https { "https" } else { "http" };
        let url = format!("{scheme}://{hostport}/master/state");
        let send = || -> Result<ureq::http::Response<ureq::Body>, FetchError> {
            let mut req = self
                .agent
                .get(&url)
                .header("Content-Type", "application/json");
            if let Some(auth) = self.authorization()? {
                req = req.header("Authorization", auth);
            }
            req.call().map_err(|source| FetchError::Http {
                url: url.clone(),
                source,
            })
        };
        let mut resp = send()?;
        if resp.status().as_u16() == 401
            && let Auth::Iam(iam) = &*self.auth
        {
            // The cached login token was refused (expired early, revoked): log in again once.
            log::info!("{url}: 401 with the cached IAM token; logging in again");
            iam.invalidate();
            resp = send()?;
        }
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(FetchError::Status { url, status });
        }
        // ureq's own body limit (10 MiB by default) is raised past stateMaxBytes: the cap is
        // enforced by `Capped`, which tells "too large" apart from a transport error.
        let hint = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let body = resp
            .into_body()
            .into_with_config()
            .limit(self.max_bytes.saturating_add(1))
            .reader();
        let mut reader = Capped {
            inner: body,
            left: self.max_bytes,
            read: 0,
            exceeded: false,
        };
        let parsed = parse_capped(&mut reader, hint, self.max_bytes);
        self.finish(parsed, reader.read, reader.exceeded, url)
    }
}

/// Reads the whole (capped) body, parses it with `serde_json::from_slice`, and frees the text
/// before returning. Measured on a 100k-task document: `from_slice` parses in about half the
/// time of `from_reader` (which goes through the reader byte by byte), and the text is gone
/// before record generation starts, so the peak stays below text + parsed state.
/// `hint` (file size or Content-Length, 0 when unknown) sizes the buffer once.
fn parse_capped<R: Read>(reader: &mut Capped<R>, hint: u64, max: u64) -> Result<State, StateError> {
    let capacity = hint.min(max.saturating_add(1)).min(usize::MAX as u64) as usize;
    let mut text = Vec::with_capacity(capacity);
    match reader.read_to_end(&mut text) {
        Ok(_) => State::from_slice(&text),
        Err(e) => Err(StateError::Json(serde_json::Error::io(e))),
    }
}
