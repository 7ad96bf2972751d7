//! Fetching the state document: from a file (`stateFile`) or from the masters with the
//! original's algorithm (behaviour reference §5.3) plus product.md's fixes (HTTP status checked,
//! body capped at `stateMaxBytes`).
//!
//! The body is parsed straight from the socket by serde_json through a size-limiting reader, so
//! the raw document is never held in memory. Every failure is a typed [`FetchError`] with a
//! short `kind` for metrics; nothing here panics. Runs on the refresh thread only.

use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

use crate::mesos::state::{self, State, StateError};

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The masters list is empty.
    #[error("no masters given to fetch state")]
    NoMasters,
    /// Connecting, sending or reading failed (including timeouts).
    #[error("GET {url}: {source}")]
    Http {
        /// The URL tried.
        url: String,
        /// The client's error.
        source: attohttpc::Error,
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
    #[error("{source_name}: reading the state document: {source}")]
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
    /// HTTPS was asked for, but this build has no TLS support yet.
    #[error("mesosHTTPSOn is set, but HTTPS to the masters is not supported by this build yet")]
    HttpsUnsupported,
}

impl FetchError {
    /// A short, stable name of the failure kind, used as a metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::NoMasters => "no_masters",
            FetchError::Http { source, .. } => match source.kind() {
                attohttpc::ErrorKind::Io(e) if e.kind() == io::ErrorKind::TimedOut => "timeout",
                attohttpc::ErrorKind::Io(e) if e.kind() == io::ErrorKind::WouldBlock => "timeout",
                _ => "connect",
            },
            FetchError::Status { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Read { source, .. } => match source.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout",
                _ => "read",
            },
            FetchError::File { .. } => "file",
            FetchError::State {
                source: StateError::Json(_),
                ..
            } => "bad_json",
            FetchError::State {
                source: StateError::NoLeader,
                ..
            } => "no_leader",
            FetchError::HttpsUnsupported => "https_unsupported",
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
    /// `Authorization` header value for basic auth, if configured.
    pub authorization: Option<String>,
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
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

impl Fetcher {
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
        let mut reader = Capped {
            inner: file,
            left: self.max_bytes,
            read: 0,
            exceeded: false,
        };
        let parsed = State::from_reader(&mut reader);
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

    fn get(&self, hostport: &str) -> Result<Fetched, FetchError> {
        if self.https {
            return Err(FetchError::HttpsUnsupported);
        }
        let url = format!("http://{hostport}/master/state");
        let http_err = |source| FetchError::Http {
            url: url.clone(),
            source,
        };
        let mut req = attohttpc::get(&url)
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .header("User-Agent", "Mesos-DNS")
            .header("Content-Type", "application/json");
        if let Some(auth) = &self.authorization {
            req = req.header("Authorization", auth.as_str());
        }
        let resp = req.send().map_err(http_err)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(FetchError::Status { url, status });
        }
        let (_, _, body) = resp.split();
        let mut reader = Capped {
            inner: body,
            left: self.max_bytes,
            read: 0,
            exceeded: false,
        };
        let parsed = State::from_reader(&mut reader);
        self.finish(parsed, reader.read, reader.exceeded, url)
    }
}
