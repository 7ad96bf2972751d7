//! Configuration: reads an unchanged Mesos-DNS `config.json` and validates it into a typed
//! [`Config`].
//!
//! Owns every key of the original (behaviour reference §2.1) with its default and validation
//! rule, plus the keys this product adds (product.md). Keys match case-insensitively, unknown
//! keys are warned about (errors under `--strict`, see [`check_strict`]), and an explicit JSON
//! `null` keeps the default. Every error names the key and the bad value.
//!
//! Loading happens in two phases, like the original: first the JSON is decoded into an
//! untyped intermediate form (wrong JSON types and out-of-range numbers fail here), then the
//! values are checked in the order of behaviour §2.2 and turned into a [`Config`]. The first
//! error stops loading; the binary exits 2 on it.
//!
//! This module never sends anything over the network. Besides the config itself it reads
//! `/etc/resolv.conf` (for `resolvers: []`), the certificate files and the IAM file; to find
//! out whether a nameserver address is local it tries to bind an ephemeral UDP socket to it.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Where a task's IPs come from (behaviour §3.4), in the configured priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSource {
    /// The IPs of the task's agent.
    Host,
    /// `Docker.NetworkSettings.IPAddress` labels of the latest running status.
    Docker,
    /// `MesosContainerizer.NetworkSettings.IPAddress` labels of the latest running status.
    Mesos,
    /// `container_status.network_infos` of the latest running status.
    NetInfo,
}

/// How master requests are authenticated (`mesosAuthentication`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MesosAuth {
    /// No authentication (`""`).
    None,
    /// HTTP Basic with `mesosCredentials`.
    Basic,
    /// DC/OS IAM login with the key in `IAMConfigFile`.
    Iam,
}

/// HTTP Basic credentials (`mesosCredentials`). `Debug` masks the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `principal`.
    pub principal: String,
    /// `secret`; never logged.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:******", self.principal)
    }
}

/// `healthFilter`: whether tasks reported unhealthy keep their records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthFilter {
    /// Ignore health (the original's behaviour).
    Off,
    /// Drop tasks whose latest TASK_RUNNING status says `healthy: false`.
    ExcludeUnhealthy,
}

impl IpSource {
    /// The spelling used in `IPSources` (`host`, `docker`, `mesos`, `netinfo`).
    pub fn as_str(self) -> &'static str {
        match self {
            IpSource::Host => "host",
            IpSource::Docker => "docker",
            IpSource::Mesos => "mesos",
            IpSource::NetInfo => "netinfo",
        }
    }

    /// Parses an `IPSources` entry; exact lowercase spelling, as in the original.
    pub fn from_name(name: &str) -> Option<IpSource> {
        match name {
            "host" => Some(IpSource::Host),
            "docker" => Some(IpSource::Docker),
            "mesos" => Some(IpSource::Mesos),
            "netinfo" => Some(IpSource::NetInfo),
            _ => None,
        }
    }
}

impl MesosAuth {
    /// The spelling used in `mesosAuthentication` (`""`, `basic`, `iam`).
    pub fn as_str(&self) -> &'static str {
        match self {
            MesosAuth::None => "",
            MesosAuth::Basic => "basic",
            MesosAuth::Iam => "iam",
        }
    }
}

impl Credentials {
    /// True when both principal and secret are empty (the original's "no credentials").
    pub fn is_empty(&self) -> bool {
        self.principal.is_empty() && self.secret.is_empty()
    }
}

impl HealthFilter {
    /// The spelling used in `healthFilter` (`off`, `exclude-unhealthy`).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthFilter::Off => "off",
            HealthFilter::ExcludeUnhealthy => "exclude-unhealthy",
        }
    }
}

/// The contents of an `IAMConfigFile` (DC/OS service account). `Debug` masks the key.
#[derive(Clone, PartialEq, Eq)]
pub struct IamConfig {
    /// `uid`: the service account id.
    pub uid: String,
    /// `private_key`: PEM RSA key used to sign the login JWT; never logged.
    pub private_key: String,
    /// `login_endpoint`: the `http(s)://` URL the JWT is POSTed to.
    pub login_endpoint: String,
}

impl std::fmt::Debug for IamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamConfig")
            .field("uid", &self.uid)
            .field("private_key", &"******")
            .field("login_endpoint", &self.login_endpoint)
            .finish()
    }
}

/// The validated configuration. Field names follow the JSON keys; see README's reference.
#[derive(Debug, Clone)]
pub struct Config {
    /// `zk`: ZooKeeper URL, empty when not used.
    pub zk: String,
    /// `zkDetectionTimeout` in seconds; 0 disables.
    pub zk_detection_timeout: u64,
    /// `masters`: normalised `host:port` entries (IPv6 in brackets), no duplicates.
    pub masters: Vec<String>,
    /// `refreshSeconds` (> 0).
    pub refresh_seconds: u64,
    /// `stateTimeoutSeconds` (> 0): whole-request timeout of a state fetch.
    pub state_timeout_seconds: u64,
    /// `ttl` of every record served.
    pub ttl: u32,
    /// `domain`, lowercase, no trailing dot (e.g. `mesos`).
    pub domain: String,
    /// `port` for DNS over UDP and TCP (0 = pick a free one, for tests).
    pub port: u16,
    /// `listener`: DNS bind address.
    pub listener: IpAddr,
    /// `httplistener`: HTTP bind address.
    pub http_listener: IpAddr,
    /// `httpport` (0 = pick a free one).
    pub http_port: u16,
    /// `dnson`.
    pub dns_on: bool,
    /// `httpon`.
    pub http_on: bool,
    /// `externalon`: forward names outside the domain.
    pub external_on: bool,
    /// `resolvers`: default upstreams, in order (port 53 when none was given).
    pub resolvers: Vec<SocketAddr>,
    /// `zoneResolvers`: zone (lowercase, no trailing dot) → upstreams.
    pub zone_resolvers: BTreeMap<String, Vec<SocketAddr>>,
    /// `timeout` in seconds for each upstream exchange (0 in the file means 5).
    pub timeout_seconds: u64,
    /// `SOAMname` with exactly one trailing dot.
    pub soa_mname: String,
    /// `SOARname` with `@` turned into `.` and exactly one trailing dot.
    pub soa_rname: String,
    /// `SOARefresh`.
    pub soa_refresh: u32,
    /// `SOARetry`.
    pub soa_retry: u32,
    /// `SOAExpire`.
    pub soa_expire: u32,
    /// `SOAMinttl`: served as the SOA MINIMUM (product.md difference 3).
    pub soa_minttl: u32,
    /// `SOASerial`: the unix time (truncated to 32 bits) of the last validation; any value in
    /// the file is overwritten. The refresh loop bumps the live serial on each good reload.
    pub soa_serial: u32,
    /// `recurseon`: the RA bit on in-domain replies.
    pub recurse_on: bool,
    /// `enforceRFC952`: use the RFC 952 label sanitiser.
    pub enforce_rfc952: bool,
    /// `SetTruncateBit`.
    pub set_truncate_bit: bool,
    /// `EnumerationOn`: serve `/v1/enumerate` and `/v1/axfr`.
    pub enumeration_on: bool,
    /// `IPSources` in priority order.
    pub ip_sources: Vec<IpSource>,
    /// `srvRecordDefaultWeight`.
    pub srv_default_weight: u16,
    /// `mesosHTTPSOn`.
    pub mesos_https_on: bool,
    /// `mesosHTTPSInsecure`: skip certificate verification (new; default false).
    pub mesos_https_insecure: bool,
    /// `caCertFile`.
    pub ca_cert_file: Option<PathBuf>,
    /// `certFile`.
    pub cert_file: Option<PathBuf>,
    /// `keyFile`.
    pub key_file: Option<PathBuf>,
    /// `mesosAuthentication`.
    pub mesos_authentication: MesosAuth,
    /// `mesosCredentials`.
    pub mesos_credentials: Credentials,
    /// `IAMConfigFile`.
    pub iam_config_file: Option<PathBuf>,
    /// The absolute path the config was read from (`File` in `/v1/config`).
    pub file: PathBuf,
    /// `stateFile`: read the state document from this file instead of a master (new).
    pub state_file: Option<PathBuf>,
    /// `ednsUdpSize`: the UDP payload size we advertise and accept (new; default 1232).
    pub edns_udp_size: u16,
    /// `stateMaxBytes`: a larger state document is rejected (new; default 256 MiB).
    pub state_max_bytes: u64,
    /// `cacheSize`: forward-cache entries, 0 disables (new; default 10,000).
    pub cache_size: usize,
    /// `healthFilter` (new; default off).
    pub health_filter: HealthFilter,
    /// `ptrOn`: serve reverse names (new; default false).
    pub ptr_on: bool,
    /// `maxStalenessSeconds`: `/ready` fails when the snapshot is older (new; 0 = no limit).
    pub max_staleness_seconds: u64,
    /// `workers`: DNS worker threads (new; 0 = one per available core).
    pub workers: usize,
    /// `pinWorkers`: pin worker i to core i (new; default: on when workers <= cores).
    pub pin_workers: Option<bool>,
    /// `udpCoalesceMicros`: how long a busy UDP worker waits before its next receive, so that
    /// queries gather into larger batches (new; default 100, 0 = off; see
    /// [`crate::dns::coalesce`]).
    pub udp_coalesce_us: u64,
    /// `refreshPriority`: `idle` (default: the refresh thread yields the core to any woken
    /// worker, with a watchdog against starvation) or `normal` (new; see
    /// [`crate::refresh_priority`]).
    pub refresh_priority: crate::refresh_priority::RefreshPriority,
    /// `forwarders`: forwarder threads that talk to the upstreams (new; default 2).
    pub forwarders: usize,
    /// `forwardQueue`: capacity of the queue from the workers to the forwarders; a query that
    /// finds it full gets SERVFAIL at once (new; default 1024).
    pub forward_queue: usize,
    /// `transferAllowFrom`: prefixes that may AXFR/IXFR the zone over TCP (new; default none,
    /// so every transfer is REFUSED).
    pub transfer_allow_from: Vec<crate::acl::Cidr>,
    /// `notifyTargets`: secondaries (`ip:port`, port 53 by default) sent a NOTIFY on each new
    /// serial (new; default none).
    pub notify_targets: Vec<SocketAddr>,
    /// `tsigKeys`: `{name, algorithm: "hmac-sha256", secret: base64}`; when non-empty every
    /// transfer must be signed with one of them, and NOTIFYs are signed with the first (new).
    pub tsig_keys: Vec<crate::dns::tsig::TsigKey>,
    /// `tcpMaxConnections`: DNS-over-TCP connections open at once; one more is closed at once
    /// and counted (new; default 256).
    pub tcp_max_connections: usize,
    /// `tcpIdleTimeoutSeconds`: a TCP connection that sends no complete query, or takes no
    /// reply, for this long is closed (new; default 10).
    pub tcp_idle_timeout_seconds: u64,
    /// `httpMaxConnections`: HTTP connections handled at once; one more gets 503 (new;
    /// default 256).
    pub http_max_connections: usize,
    /// `recursionAllowFrom`: prefixes whose clients may have names outside the domain
    /// forwarded; others get REFUSED (new; default none: everyone, when `externalon`).
    pub recursion_allow_from: Vec<crate::acl::Cidr>,
}
/// Why a configuration was rejected. Every message names the key and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file does not exist.
    #[error("missing configuration file: {path:?}")]
    MissingFile {
        /// Absolute path that was tried.
        path: PathBuf,
    },
    /// The config file (or a file it names) exists but cannot be read.
    #[error("cannot read configuration file {path:?}: {reason}")]
    Read {
        /// Absolute path of the file.
        path: PathBuf,
        /// The I/O error or size limit.
        reason: String,
    },
    /// The file is not a JSON object.
    #[error("failed to unmarshal config file {path:?}: {reason}")]
    Syntax {
        /// Path of the config file.
        path: PathBuf,
        /// The JSON parser's complaint.
        reason: String,
    },
    /// A key holds a value of the wrong JSON type.
    #[error("config key {key:?}: expected {expected}, got {got}")]
    WrongType {
        /// Canonical key (`mesosCredentials.secret` for nested keys).
        key: String,
        /// What the key takes, e.g. `a number`.
        expected: &'static str,
        /// The offending JSON value, compact and shortened.
        got: String,
    },
    /// A number outside the range its key accepts.
    #[error("{key}: {value} is out of range {min}..={max}")]
    OutOfRange {
        /// Canonical key.
        key: String,
        /// The offending number as written.
        value: String,
        /// Smallest accepted value.
        min: String,
        /// Largest accepted value.
        max: String,
    },
    /// A key that must be positive is zero or negative (`refreshSeconds`, `stateMaxBytes`).
    #[error("{key}: {value} must be > 0")]
    NotPositive {
        /// Canonical key.
        key: &'static str,
        /// The offending value.
        value: i64,
    },
    /// `stateTimeoutSeconds` is zero or negative.
    #[error("stateTimeoutSeconds: Invalid HTTP Timeout: {0}")]
    InvalidHttpTimeout(i64),
    /// `dnson` and `httpon` are both false.
    #[error("either DNS or HTTP server should be on (dnson and httpon are both false)")]
    ServicesOff,
    /// None of `masters`, `zk` and `stateFile` is set.
    #[error("masters: no masters given (set masters, zk or stateFile)")]
    NoMasters,
    /// A `masters` entry is not `host:port`.
    #[error("masters: {value:?} is not host:port (port 1-65535, IPv6 in brackets)")]
    InvalidMaster {
        /// The entry as written.
        value: String,
    },
    /// Two `masters` entries are equal after normalising.
    #[error("masters: duplicate master {value:?}")]
    DuplicateMaster {
        /// The second entry as written.
        value: String,
    },
    /// `zk` is not a `zk://host[:port][,host...]/path` URL.
    #[error("zk: {value:?} is not a valid zk:// URL ({reason})")]
    InvalidZk {
        /// The URL as written, with any `user:pass@` masked.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `listener` or `httplistener` is not an IP literal.
    #[error("{key}: {value:?} is not an IP address")]
    InvalidListener {
        /// `listener` or `httplistener`.
        key: &'static str,
        /// The value as written.
        value: String,
    },
    /// A resolver is not `ip` or `ip:port`.
    #[error("{key}: {value:?} is not ip or ip:port (port 1-65535)")]
    InvalidResolver {
        /// `resolvers` or `zoneResolvers["<zone>"]`.
        key: String,
        /// The entry as written.
        value: String,
    },
    /// Two resolvers of one list are equal after normalising.
    #[error("{key}: duplicate resolver {value:?}")]
    DuplicateResolver {
        /// `resolvers` or `zoneResolvers["<zone>"]`.
        key: String,
        /// The second entry as written.
        value: String,
    },
    /// `resolvers: []` with `externalon`, and the resolv.conf file cannot be read.
    #[error("resolvers: empty, and nameservers cannot be read from {path:?}: {reason}")]
    ResolvConf {
        /// The resolv.conf path.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A `zoneResolvers` zone does not pass the domain-name rule.
    #[error("zoneResolvers: {zone:?} is not a valid domain name")]
    InvalidZone {
        /// The zone as written.
        zone: String,
    },
    /// A `zoneResolvers` zone has an empty resolver list.
    #[error("zoneResolvers: field ZoneResolver {zone} is empty")]
    EmptyZone {
        /// The zone as written.
        zone: String,
    },
    /// A `zoneResolvers` zone equals the Mesos domain.
    #[error("zoneResolvers: can't specify ZoneResolver for Mesos domain ({zone})")]
    ZoneIsDomain {
        /// The zone.
        zone: String,
    },
    /// One zone (or the domain) is a dot-suffix of another.
    #[error("zoneResolvers: ambiguous zone resolvers: {masked} is masked by {by}")]
    AmbiguousZones {
        /// The longer name, with a leading dot.
        masked: String,
        /// The shorter name, with a leading dot.
        by: String,
    },
    /// `IPSources` is empty.
    #[error("IPSources: empty ip sources")]
    EmptyIpSources,
    /// `IPSources` names an unknown source.
    #[error("IPSources: invalid ip source {0:?}")]
    InvalidIpSource(String),
    /// `IPSources` names a source twice.
    #[error("IPSources: duplicate ip source {0:?}")]
    DuplicateIpSource(String),
    /// `domain` does not match `^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$` (after lowercasing).
    #[error("domain: {0:?} is not a valid domain name")]
    InvalidDomain(String),
    /// `SOAMname` or `SOARname` cannot be a DNS name.
    #[error("{key}: {value:?} is not a valid DNS name ({reason})")]
    InvalidName {
        /// `SOAMname` or `SOARname`.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `certFile` is set without `keyFile`.
    #[error("keyFile: empty while certFile is {cert:?} (Missing private key)")]
    MissingKeyFile {
        /// The `certFile` value.
        cert: PathBuf,
    },
    /// `keyFile` is set without `certFile`.
    #[error("certFile: empty while keyFile is {key:?} (Missing certificate)")]
    MissingCertFile {
        /// The `keyFile` value.
        key: PathBuf,
    },
    /// A file named by a key cannot be read.
    #[error("{key}: cannot read {path:?}: {reason}")]
    UnreadableFile {
        /// `caCertFile`, `certFile`, `keyFile` or `IAMConfigFile`.
        key: &'static str,
        /// The path as configured.
        path: PathBuf,
        /// The I/O error or size limit.
        reason: String,
    },
    /// A certificate or key file holds no PEM block of the expected kind.
    #[error("{key}: {path:?} holds no PEM {expected} block")]
    NotPem {
        /// `caCertFile`, `certFile` or `keyFile`.
        key: &'static str,
        /// The path as configured.
        path: PathBuf,
        /// `CERTIFICATE` or `PRIVATE KEY`.
        expected: &'static str,
    },
    /// `mesosAuthentication` is not `""`, `basic` or `iam`.
    #[error(
        "mesosAuthentication: {0:?} is not \"\", \"basic\" or \"iam\" (unregistered factory requested)"
    )]
    UnknownAuth(String),
    /// `mesosAuthentication: "basic"` with empty `mesosCredentials`.
    #[error(
        "mesosCredentials: empty while mesosAuthentication is \"basic\" (invalid HTTP Basic configuration)"
    )]
    EmptyBasicCredentials,
    /// `mesosAuthentication: "iam"` without `IAMConfigFile`.
    #[error(
        "IAMConfigFile: empty while mesosAuthentication is \"iam\" (invalid HTTP IAM configuration)"
    )]
    MissingIamFile,
    /// The `IAMConfigFile` is not JSON or lacks a field.
    #[error("IAMConfigFile: {path:?}: {reason} (invalid HTTP IAM configuration)")]
    InvalidIamFile {
        /// The path as configured.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A key added by this product has a value it does not accept.
    #[error("{key}: {value} is not valid, expected {expected}")]
    InvalidValue {
        /// Canonical key, e.g. `healthFilter`.
        key: &'static str,
        /// The offending value, JSON-quoted when a string.
        value: String,
        /// What the key accepts.
        expected: &'static str,
    },
    /// An unknown key under `--validate --strict` (see [`check_strict`]).
    #[error("unknown config key {key:?}")]
    UnknownKey {
        /// The key as written.
        key: String,
    },
}

/// The resolv.conf read for `resolvers: []`.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Files this module reads (config, certificates, IAM file, resolv.conf) are capped at this.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Second-valued keys are capped at `i32::MAX` so deadlines never overflow.
const MAX_SECONDS: i64 = i32::MAX as i64;
/// Most DNS worker threads `workers` accepts.
const MAX_WORKERS: u64 = 1024;
/// Upper bound of `forwarders`: each keeps many queries in flight, so a few suffice.
const MAX_FORWARDERS: u64 = 64;
/// Upper bound of `forwardQueue` (each slot holds a whole query, about 4 KiB).
const MAX_FORWARD_QUEUE: u64 = 1 << 20;
/// Upper bound of `tcpMaxConnections` and `httpMaxConnections`: each connection holds a
/// thread (and, over TCP, 128 KiB of buffers).
const MAX_CONNECTIONS: u64 = 16_384;
/// Upper bound of `tcpIdleTimeoutSeconds`.
const MAX_IDLE_SECONDS: u64 = 3600;
/// Prefix of the warning emitted for an unknown key; [`check_strict`] looks for it.
const UNKNOWN_KEY_PREFIX: &str = "unknown config key ";

/// Every key of the file, canonical spelling (behaviour §2.1 plus product.md additions).
const KEYS: &[&str] = &[
    "zk",
    "zkDetectionTimeout",
    "masters",
    "refreshSeconds",
    "stateTimeoutSeconds",
    "ttl",
    "domain",
    "port",
    "listener",
    "httplistener",
    "httpport",
    "dnson",
    "httpon",
    "externalon",
    "resolvers",
    "zoneResolvers",
    "timeout",
    "SOAMname",
    "SOARname",
    "SOARefresh",
    "SOARetry",
    "SOAExpire",
    "SOAMinttl",
    "SOASerial",
    "recurseon",
    "enforceRFC952",
    "SetTruncateBit",
    "EnumerationOn",
    "IPSources",
    "srvRecordDefaultWeight",
    "mesosHTTPSOn",
    "caCertFile",
    "certFile",
    "keyFile",
    "mesosAuthentication",
    "mesosCredentials",
    "IAMConfigFile",
    "File",
    // Added by this product.
    "stateFile",
    "ednsUdpSize",
    "stateMaxBytes",
    "cacheSize",
    "healthFilter",
    "ptrOn",
    "mesosHTTPSInsecure",
    "maxStalenessSeconds",
    "workers",
    "pinWorkers",
    "udpCoalesceMicros",
    "refreshPriority",
    "forwarders",
    "forwardQueue",
    "transferAllowFrom",
    "notifyTargets",
    "tsigKeys",
    "tcpMaxConnections",
    "tcpIdleTimeoutSeconds",
    "httpMaxConnections",
    "recursionAllowFrom",
];

/// The file decoded but not yet validated: JSON types and number ranges are checked, nothing
/// else. Validation ([`validate_raw`]) turns it into a [`Config`] in the order of §2.2.
#[derive(Debug, Clone)]
struct Raw {
    zk: String,
    zk_detection_timeout: i64,
    masters: Vec<String>,
    refresh_seconds: i64,
    state_timeout_seconds: i64,
    ttl: u32,
    domain: String,
    port: u16,
    listener: String,
    http_listener: String,
    http_port: u16,
    dns_on: bool,
    http_on: bool,
    external_on: bool,
    resolvers: Vec<String>,
    zone_resolvers: BTreeMap<String, Vec<String>>,
    timeout: i64,
    soa_mname: String,
    soa_rname: String,
    soa_refresh: u32,
    soa_retry: u32,
    soa_expire: u32,
    soa_minttl: u32,
    recurse_on: bool,
    enforce_rfc952: bool,
    set_truncate_bit: bool,
    enumeration_on: bool,
    ip_sources: Vec<String>,
    srv_default_weight: u16,
    mesos_https_on: bool,
    mesos_https_insecure: bool,
    ca_cert_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    mesos_authentication: String,
    mesos_credentials: Credentials,
    iam_config_file: Option<PathBuf>,
    file: PathBuf,
    state_file: Option<PathBuf>,
    edns_udp_size: u16,
    state_max_bytes: u64,
    cache_size: u64,
    health_filter: String,
    ptr_on: bool,
    max_staleness_seconds: u64,
    workers: u64,
    pin_workers: Option<bool>,
    udp_coalesce_us: u64,
    refresh_priority: String,
    forwarders: u64,
    forward_queue: u64,
    transfer_allow_from: Vec<String>,
    notify_targets: Vec<String>,
    tsig_keys: Vec<crate::dns::tsig::TsigKey>,
    tcp_max_connections: u64,
    tcp_idle_timeout_seconds: u64,
    http_max_connections: u64,
    recursion_allow_from: Vec<String>,
}

impl Default for Raw {
    fn default() -> Raw {
        Raw::from_config(&default_config())
    }
}

impl Raw {
    /// The inverse of validation, so that [`Config::validate`] can re-run every rule.
    fn from_config(c: &Config) -> Raw {
        Raw {
            zk: c.zk.clone(),
            zk_detection_timeout: i64::try_from(c.zk_detection_timeout).unwrap_or(i64::MAX),
            masters: c.masters.clone(),
            refresh_seconds: i64::try_from(c.refresh_seconds).unwrap_or(i64::MAX),
            state_timeout_seconds: i64::try_from(c.state_timeout_seconds).unwrap_or(i64::MAX),
            ttl: c.ttl,
            domain: c.domain.clone(),
            port: c.port,
            listener: c.listener.to_string(),
            http_listener: c.http_listener.to_string(),
            http_port: c.http_port,
            dns_on: c.dns_on,
            http_on: c.http_on,
            external_on: c.external_on,
            resolvers: c.resolvers.iter().map(|r| resolver_string(*r)).collect(),
            zone_resolvers: c
                .zone_resolvers
                .iter()
                .map(|(z, rs)| (z.clone(), rs.iter().map(|r| resolver_string(*r)).collect()))
                .collect(),
            timeout: i64::try_from(c.timeout_seconds).unwrap_or(i64::MAX),
            soa_mname: c.soa_mname.clone(),
            soa_rname: c.soa_rname.clone(),
            soa_refresh: c.soa_refresh,
            soa_retry: c.soa_retry,
            soa_expire: c.soa_expire,
            soa_minttl: c.soa_minttl,
            recurse_on: c.recurse_on,
            enforce_rfc952: c.enforce_rfc952,
            set_truncate_bit: c.set_truncate_bit,
            enumeration_on: c.enumeration_on,
            ip_sources: c
                .ip_sources
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
            srv_default_weight: c.srv_default_weight,
            mesos_https_on: c.mesos_https_on,
            mesos_https_insecure: c.mesos_https_insecure,
            ca_cert_file: c.ca_cert_file.clone(),
            cert_file: c.cert_file.clone(),
            key_file: c.key_file.clone(),
            mesos_authentication: c.mesos_authentication.as_str().to_string(),
            mesos_credentials: c.mesos_credentials.clone(),
            iam_config_file: c.iam_config_file.clone(),
            file: c.file.clone(),
            state_file: c.state_file.clone(),
            edns_udp_size: c.edns_udp_size,
            state_max_bytes: c.state_max_bytes,
            cache_size: u64::try_from(c.cache_size).unwrap_or(u64::MAX),
            health_filter: c.health_filter.as_str().to_string(),
            ptr_on: c.ptr_on,
            max_staleness_seconds: c.max_staleness_seconds,
            workers: u64::try_from(c.workers).unwrap_or(u64::MAX),
            pin_workers: c.pin_workers,
            udp_coalesce_us: c.udp_coalesce_us,
            refresh_priority: c.refresh_priority.as_str().to_string(),
            forwarders: u64::try_from(c.forwarders).unwrap_or(u64::MAX),
            forward_queue: u64::try_from(c.forward_queue).unwrap_or(u64::MAX),
            transfer_allow_from: c
                .transfer_allow_from
                .iter()
                .map(|p| p.to_string())
                .collect(),
            notify_targets: c.notify_targets.iter().map(|a| a.to_string()).collect(),
            tsig_keys: c.tsig_keys.clone(),
            tcp_max_connections: u64::try_from(c.tcp_max_connections).unwrap_or(u64::MAX),
            tcp_idle_timeout_seconds: c.tcp_idle_timeout_seconds,
            http_max_connections: u64::try_from(c.http_max_connections).unwrap_or(u64::MAX),
            recursion_allow_from: c
                .recursion_allow_from
                .iter()
                .map(|p| p.to_string())
                .collect(),
        }
    }

    /// Applies one top-level key (canonical spelling) of the file.
    fn apply(
        &mut self,
        key: &'static str,
        v: &Value,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        match key {
            "zk" => self.zk = string(key, v)?,
            "zkDetectionTimeout" => self.zk_detection_timeout = int(key, v, 0, MAX_SECONDS)?,
            "masters" => self.masters = string_list(key, v)?,
            "refreshSeconds" => self.refresh_seconds = int(key, v, -MAX_SECONDS, MAX_SECONDS)?,
            "stateTimeoutSeconds" => {
                self.state_timeout_seconds = int(key, v, -MAX_SECONDS, MAX_SECONDS)?;
            }
            "ttl" => self.ttl = u32_in(key, v, 0, i32::MAX as u32)?,
            "domain" => self.domain = string(key, v)?,
            "port" => self.port = u16_field(key, v)?,
            "listener" => self.listener = string(key, v)?,
            "httplistener" => self.http_listener = string(key, v)?,
            "httpport" => self.http_port = u16_field(key, v)?,
            "dnson" => self.dns_on = boolean(key, v)?,
            "httpon" => self.http_on = boolean(key, v)?,
            "externalon" => self.external_on = boolean(key, v)?,
            "resolvers" => self.resolvers = string_list(key, v)?,
            "zoneResolvers" => self.zone_resolvers = zone_map(key, v)?,
            "timeout" => self.timeout = int(key, v, 0, MAX_SECONDS)?,
            "SOAMname" => self.soa_mname = string(key, v)?,
            "SOARname" => self.soa_rname = string(key, v)?,
            "SOARefresh" => self.soa_refresh = u32_in(key, v, 0, u32::MAX)?,
            "SOARetry" => self.soa_retry = u32_in(key, v, 0, u32::MAX)?,
            "SOAExpire" => self.soa_expire = u32_in(key, v, 0, u32::MAX)?,
            "SOAMinttl" => self.soa_minttl = u32_in(key, v, 0, u32::MAX)?,
            // Type-checked like the original, then overwritten with the start time.
            "SOASerial" => {
                u32_in(key, v, 0, u32::MAX)?;
            }
            "recurseon" => self.recurse_on = boolean(key, v)?,
            "enforceRFC952" => self.enforce_rfc952 = boolean(key, v)?,
            "SetTruncateBit" => self.set_truncate_bit = boolean(key, v)?,
            "EnumerationOn" => self.enumeration_on = boolean(key, v)?,
            "IPSources" => self.ip_sources = string_list(key, v)?,
            "srvRecordDefaultWeight" => self.srv_default_weight = u16_field(key, v)?,
            "mesosHTTPSOn" => self.mesos_https_on = boolean(key, v)?,
            "caCertFile" => self.ca_cert_file = path(key, v)?,
            "certFile" => self.cert_file = path(key, v)?,
            "keyFile" => self.key_file = path(key, v)?,
            "mesosAuthentication" => self.mesos_authentication = string(key, v)?,
            "mesosCredentials" => self.apply_credentials(v, warnings)?,
            "IAMConfigFile" => self.iam_config_file = path(key, v)?,
            // Internal in the original: type-checked, then overwritten with the real path.
            "File" => {
                string(key, v)?;
            }
            "stateFile" => self.state_file = path(key, v)?,
            "ednsUdpSize" => self.edns_udp_size = u16_in(key, v, 512, u16::MAX)?,
            "stateMaxBytes" => self.state_max_bytes = uint(key, v, 0, u64::MAX)?,
            "cacheSize" => self.cache_size = uint(key, v, 0, usize::MAX as u64)?,
            "healthFilter" => self.health_filter = string(key, v)?,
            "ptrOn" => self.ptr_on = boolean(key, v)?,
            "mesosHTTPSInsecure" => self.mesos_https_insecure = boolean(key, v)?,
            "maxStalenessSeconds" => {
                self.max_staleness_seconds = uint(key, v, 0, MAX_SECONDS as u64)?
            }
            "workers" => self.workers = uint(key, v, 0, MAX_WORKERS)?,
            "pinWorkers" => self.pin_workers = Some(boolean(key, v)?),
            "udpCoalesceMicros" => {
                self.udp_coalesce_us = uint(key, v, 0, crate::dns::coalesce::MAX_WAIT_US)?;
            }
            "refreshPriority" => self.refresh_priority = string(key, v)?,
            "forwarders" => self.forwarders = uint(key, v, 1, MAX_FORWARDERS)?,
            "forwardQueue" => self.forward_queue = uint(key, v, 1, MAX_FORWARD_QUEUE)?,
            "transferAllowFrom" => self.transfer_allow_from = string_list(key, v)?,
            "notifyTargets" => self.notify_targets = string_list(key, v)?,
            "tsigKeys" => self.tsig_keys = tsig_keys(v, warnings)?,
            "tcpMaxConnections" => self.tcp_max_connections = uint(key, v, 1, MAX_CONNECTIONS)?,
            "tcpIdleTimeoutSeconds" => {
                self.tcp_idle_timeout_seconds = uint(key, v, 1, MAX_IDLE_SECONDS)?;
            }
            "httpMaxConnections" => self.http_max_connections = uint(key, v, 1, MAX_CONNECTIONS)?,
            "recursionAllowFrom" => self.recursion_allow_from = string_list(key, v)?,
            // KEYS and this match are kept in step by the `every_key_is_applied` test.
            _ => warnings.push(format!("{UNKNOWN_KEY_PREFIX}{key:?} ignored")),
        }
        Ok(())
    }

    /// `mesosCredentials`: `{principal, secret}`, matched case-insensitively.
    fn apply_credentials(
        &mut self,
        v: &Value,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let Value::Object(map) = v else {
            // The value may hold the secret: name its type only.
            return Err(ConfigError::WrongType {
                key: "mesosCredentials".to_string(),
                expected: "an object {principal, secret}",
                got: json_type_name(v).to_string(),
            });
        };
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            if k.eq_ignore_ascii_case("principal") {
                self.mesos_credentials.principal = string("mesosCredentials.principal", v)?;
            } else if k.eq_ignore_ascii_case("secret") {
                // Never echo the secret in an error.
                if !v.is_string() {
                    return Err(ConfigError::WrongType {
                        key: "mesosCredentials.secret".to_string(),
                        expected: "a string",
                        got: json_type_name(v).to_string(),
                    });
                }
                self.mesos_credentials.secret = v.as_str().unwrap_or_default().to_string();
            } else {
                warnings.push(format!(
                    "{UNKNOWN_KEY_PREFIX}{:?} ignored",
                    format!("mesosCredentials.{k}")
                ));
            }
        }
        Ok(())
    }
}

/// `tsigKeys`: a list of `{name, algorithm, secret}` (field names case-insensitive; the
/// algorithm defaults to `hmac-sha256`, the secret is base64). Errors never echo a secret.
fn tsig_keys(
    v: &Value,
    warnings: &mut Vec<String>,
) -> Result<Vec<crate::dns::tsig::TsigKey>, ConfigError> {
    const SHAPE: &str = "a list of {name, algorithm, secret}";
    let wrong = |key: String, expected, v: &Value| ConfigError::WrongType {
        key,
        expected,
        got: json_type_name(v).to_string(),
    };
    let Value::Array(items) = v else {
        return Err(wrong("tsigKeys".into(), SHAPE, v));
    };
    let mut out: Vec<crate::dns::tsig::TsigKey> = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(map) = item else {
            return Err(wrong("tsigKeys".into(), SHAPE, item));
        };
        let (mut name, mut alg, mut secret) = (None, None, None);
        for (k, fv) in map {
            let slot = match k.to_ascii_lowercase().as_str() {
                "name" => &mut name,
                "algorithm" => &mut alg,
                "secret" => &mut secret,
                _ => {
                    warnings.push(format!("{UNKNOWN_KEY_PREFIX}\"tsigKeys.{k}\" ignored"));
                    continue;
                }
            };
            match fv {
                Value::String(s) => *slot = Some(s.clone()),
                Value::Null => {}
                _ => return Err(wrong(format!("tsigKeys.{k}"), "a string", fv)),
            }
        }
        let key = crate::dns::tsig::TsigKey::parse(
            name.as_deref().unwrap_or(""),
            alg.as_deref().unwrap_or(crate::dns::tsig::ALGORITHM),
            secret.as_deref().unwrap_or(""),
        )
        .map_err(|value| ConfigError::InvalidValue {
            key: "tsigKeys",
            value,
            expected: "{name, algorithm: \"hmac-sha256\", secret: base64}",
        })?;
        if out.iter().any(|o| o.name() == key.name()) {
            return Err(ConfigError::InvalidValue {
                key: "tsigKeys",
                value: format!("duplicate key name {:?}", key.name()),
                expected: "distinct key names",
            });
        }
        out.push(key);
    }
    Ok(out)
}

/// Renders a JSON value for an error message: compact, at most ~60 characters.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 60 {
        return s;
    }
    let mut short: String = s.chars().take(57).collect();
    short.push_str("...");
    short
}

/// "a number", "a string", ...: for errors that must not echo the value.
fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(key: &str, expected: &'static str, v: &Value) -> ConfigError {
    ConfigError::WrongType {
        key: key.to_string(),
        expected,
        got: show(v),
    }
}

fn out_of_range(key: &str, value: String, min: impl ToString, max: impl ToString) -> ConfigError {
    ConfigError::OutOfRange {
        key: key.to_string(),
        value,
        min: min.to_string(),
        max: max.to_string(),
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool, ConfigError> {
    v.as_bool()
        .ok_or_else(|| wrong_type(key, "true or false", v))
}

fn string(key: &str, v: &Value) -> Result<String, ConfigError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| wrong_type(key, "a string", v))
}

/// A path key: `""` means unset.
fn path(key: &str, v: &Value) -> Result<Option<PathBuf>, ConfigError> {
    let s = string(key, v)?;
    Ok(if s.is_empty() {
        None
    } else {
        Some(PathBuf::from(s))
    })
}

fn string_list(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    let Value::Array(items) = v else {
        return Err(wrong_type(key, "a list of strings", v));
    };
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| wrong_type(key, "a list of strings", v))
        })
        .collect()
}

/// `zoneResolvers`: an object of zone → list of resolvers. A `null` list counts as empty (and
/// is then rejected by validation), as in the original.
fn zone_map(key: &str, v: &Value) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let Value::Object(map) = v else {
        return Err(wrong_type(key, "an object of zone -> list of resolvers", v));
    };
    let mut out = BTreeMap::new();
    for (zone, list) in map {
        let list = if list.is_null() {
            Vec::new()
        } else {
            string_list(&format!("{key}[{zone:?}]"), list)?
        };
        out.insert(zone.clone(), list);
    }
    Ok(out)
}

/// An integer key in `min..=max`. Like Go's decoder, `60.0` and `1e3` are not integers.
fn int(key: &str, v: &Value, min: i64, max: i64) -> Result<i64, ConfigError> {
    let Value::Number(n) = v else {
        return Err(wrong_type(key, "an integer", v));
    };
    match n.as_i64() {
        Some(i) if (min..=max).contains(&i) => Ok(i),
        Some(_) => Err(out_of_range(key, n.to_string(), min, max)),
        None if n.is_u64()
            || n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() >= 9.0e18) =>
        {
            Err(out_of_range(key, n.to_string(), min, max))
        }
        None => Err(wrong_type(key, "an integer", v)),
    }
}

/// An unsigned integer key in `min..=max`.
fn uint(key: &str, v: &Value, min: u64, max: u64) -> Result<u64, ConfigError> {
    let Value::Number(n) = v else {
        return Err(wrong_type(key, "an integer", v));
    };
    match n.as_u64() {
        Some(u) if (min..=max).contains(&u) => Ok(u),
        Some(_) => Err(out_of_range(key, n.to_string(), min, max)),
        None if n.is_i64()
            || n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() >= 9.0e18) =>
        {
            Err(out_of_range(key, n.to_string(), min, max))
        }
        None => Err(wrong_type(key, "an integer", v)),
    }
}

fn u32_in(key: &str, v: &Value, min: u32, max: u32) -> Result<u32, ConfigError> {
    let u = uint(key, v, u64::from(min), u64::from(max))?;
    u32::try_from(u).map_err(|_| out_of_range(key, u.to_string(), min, max))
}

fn u16_in(key: &str, v: &Value, min: u16, max: u16) -> Result<u16, ConfigError> {
    let u = uint(key, v, u64::from(min), u64::from(max))?;
    u16::try_from(u).map_err(|_| out_of_range(key, u.to_string(), min, max))
}

fn u16_field(key: &str, v: &Value) -> Result<u16, ConfigError> {
    u16_in(key, v, 0, u16::MAX)
}

/// Every default of behaviour §2.1 and product.md. `SOASerial` is 0 and `file` empty until the
/// config is validated/loaded. Note that this config alone does not validate: it has neither
/// `masters`, `zk` nor `stateFile`.
pub fn default_config() -> Config {
    Config {
        zk: String::new(),
        zk_detection_timeout: 30,
        masters: Vec::new(),
        refresh_seconds: 60,
        state_timeout_seconds: 300,
        ttl: 60,
        domain: "mesos".to_string(),
        port: 53,
        listener: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        http_listener: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        http_port: 8123,
        dns_on: true,
        http_on: true,
        external_on: true,
        resolvers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), 53)],
        zone_resolvers: BTreeMap::new(),
        timeout_seconds: 5,
        soa_mname: "ns1.mesos.".to_string(),
        soa_rname: "root.ns1.mesos.".to_string(),
        soa_refresh: 60,
        soa_retry: 600,
        soa_expire: 86400,
        soa_minttl: 60,
        soa_serial: 0,
        recurse_on: true,
        enforce_rfc952: false,
        set_truncate_bit: true,
        enumeration_on: true,
        ip_sources: vec![IpSource::NetInfo, IpSource::Mesos, IpSource::Host],
        srv_default_weight: 1,
        mesos_https_on: false,
        mesos_https_insecure: false,
        ca_cert_file: None,
        cert_file: None,
        key_file: None,
        mesos_authentication: MesosAuth::None,
        mesos_credentials: Credentials::default(),
        iam_config_file: None,
        file: PathBuf::new(),
        state_file: None,
        edns_udp_size: 1232,
        state_max_bytes: 256 << 20,
        cache_size: 10_000,
        health_filter: HealthFilter::Off,
        ptr_on: false,
        max_staleness_seconds: 0,
        workers: 0,
        pin_workers: None,
        udp_coalesce_us: 100,
        refresh_priority: crate::refresh_priority::RefreshPriority::Idle,
        forwarders: 2,
        forward_queue: 1024,
        transfer_allow_from: Vec::new(),
        notify_targets: Vec::new(),
        tsig_keys: Vec::new(),
        tcp_max_connections: 256,
        tcp_idle_timeout_seconds: 10,
        http_max_connections: crate::http::MAX_CONNS,
        recursion_allow_from: Vec::new(),
    }
}

impl Default for Config {
    fn default() -> Config {
        default_config()
    }
}

/// Expands a leading `~/` to `$HOME` and makes the path absolute (behaviour §1.1).
pub fn resolve_path(path: &Path) -> PathBuf {
    let expanded = match (
        path.to_str().and_then(|s| s.strip_prefix("~/")),
        std::env::var_os("HOME"),
    ) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    };
    std::path::absolute(&expanded).unwrap_or(expanded)
}

/// Reads at most [`MAX_FILE_BYTES`] of a file.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(buf)
}

/// Loads and validates the config file: `~/` is expanded, the path made absolute and stored in
/// [`Config::file`]. Returns the config and the warnings (unknown keys, ignored credentials)
/// for the caller to log.
pub fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    let abs = resolve_path(path);
    let bytes = read_bounded(&abs).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ConfigError::MissingFile { path: abs.clone() },
        _ => ConfigError::Read {
            path: abs.clone(),
            reason: e.to_string(),
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::Syntax {
        path: abs.clone(),
        reason: e.to_string(),
    })?;
    parse_str(&text, &abs)
}

/// Parses and validates a config document; `path` is stored as-is in [`Config::file`].
/// Returns the config and the warnings for the caller to log.
pub fn parse_str(json: &str, path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    parse_str_with(json, path, Path::new(RESOLV_CONF))
}

/// [`parse_str`] with an injectable resolv.conf path.
fn parse_str_with(
    json: &str,
    path: &Path,
    resolv_conf: &Path,
) -> Result<(Config, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let raw = decode(json, path, &mut warnings)?;
    let config = validate_raw(raw, resolv_conf, &mut warnings)?;
    Ok((config, warnings))
}

/// Phase 1: JSON → [`Raw`]. Keys match case-insensitively; with several spellings of one key
/// the last in the file wins, as with Go's decoder.
fn decode(json: &str, path: &Path, warnings: &mut Vec<String>) -> Result<Raw, ConfigError> {
    let value: Value = serde_json::from_str(json).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            reason: format!("expected a JSON object, got {}", show(&value)),
        });
    };
    let mut raw = Raw::default();
    for (key, v) in &map {
        let Some(canonical) = KEYS.iter().copied().find(|k| k.eq_ignore_ascii_case(key)) else {
            warnings.push(format!("{UNKNOWN_KEY_PREFIX}{key:?} ignored"));
            continue;
        };
        if v.is_null() {
            continue;
        }
        raw.apply(canonical, v, warnings)?;
    }
    raw.file = path.to_path_buf();
    Ok(raw)
}

/// For `--validate --strict`: turns the first unknown-key warning into an error.
pub fn check_strict(warnings: &[String]) -> Result<(), ConfigError> {
    match warnings
        .iter()
        .find_map(|w| w.strip_prefix(UNKNOWN_KEY_PREFIX))
    {
        Some(rest) => Err(ConfigError::UnknownKey {
            key: rest
                .trim_end_matches(" ignored")
                .trim_matches('"')
                .to_string(),
        }),
        None => Ok(()),
    }
}

impl Config {
    /// Re-runs every rule of §2.1/§2.2 on this config, normalising it in place (SOA names,
    /// domain case, `timeout` 0 → 5, `resolvers: []` → resolv.conf, a fresh `SOASerial`).
    /// Returns the warnings. Useful for configs built in code from [`default_config`].
    pub fn validate(&mut self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        *self = validate_raw(
            Raw::from_config(self),
            Path::new(RESOLV_CONF),
            &mut warnings,
        )?;
        Ok(warnings)
    }

    /// The effective config as `/v1/config` shows it (behaviour §6): Go field names in the
    /// original's order, then this product's keys. `MesosCredentials.Secret` is masked as
    /// `******` when set. `SOASerial` is the value at validation; the HTTP layer may overwrite
    /// it with the live serial.
    pub fn masked_json(&self) -> Value {
        let path_str = |p: &Option<PathBuf>| -> Value {
            Value::String(
                p.as_ref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        };
        let resolvers = |rs: &[SocketAddr]| -> Value {
            Value::Array(
                rs.iter()
                    .map(|r| Value::String(resolver_string(*r)))
                    .collect(),
            )
        };
        let mut m = Map::new();
        m.insert("RefreshSeconds".into(), self.refresh_seconds.into());
        m.insert("Port".into(), self.port.into());
        m.insert("Timeout".into(), self.timeout_seconds.into());
        m.insert(
            "StateTimeoutSeconds".into(),
            self.state_timeout_seconds.into(),
        );
        m.insert(
            "ZkDetectionTimeout".into(),
            self.zk_detection_timeout.into(),
        );
        m.insert("HttpPort".into(), self.http_port.into());
        m.insert("TTL".into(), self.ttl.into());
        m.insert(
            "SRVRecordDefaultWeight".into(),
            self.srv_default_weight.into(),
        );
        m.insert("SOASerial".into(), self.soa_serial.into());
        m.insert("SOARefresh".into(), self.soa_refresh.into());
        m.insert("SOARetry".into(), self.soa_retry.into());
        m.insert("SOAExpire".into(), self.soa_expire.into());
        m.insert("SOAMinttl".into(), self.soa_minttl.into());
        m.insert("SOAMname".into(), self.soa_mname.clone().into());
        m.insert("SOARname".into(), self.soa_rname.clone().into());
        m.insert(
            "Masters".into(),
            if self.masters.is_empty() {
                Value::Null
            } else {
                self.masters.clone().into()
            },
        );
        m.insert(
            "ZoneResolvers".into(),
            Value::Object(
                self.zone_resolvers
                    .iter()
                    .map(|(z, rs)| (z.clone(), resolvers(rs)))
                    .collect(),
            ),
        );
        m.insert("Resolvers".into(), resolvers(&self.resolvers));
        m.insert(
            "IPSources".into(),
            Value::Array(
                self.ip_sources
                    .iter()
                    .map(|s| Value::String(s.as_str().into()))
                    .collect(),
            ),
        );
        m.insert("Zk".into(), mask_userinfo(&self.zk).into());
        m.insert("Domain".into(), self.domain.clone().into());
        m.insert(
            "File".into(),
            self.file.to_string_lossy().into_owned().into(),
        );
        m.insert("Listener".into(), self.listener.to_string().into());
        m.insert("HTTPListener".into(), self.http_listener.to_string().into());
        m.insert("RecurseOn".into(), self.recurse_on.into());
        m.insert("DnsOn".into(), self.dns_on.into());
        m.insert("HttpOn".into(), self.http_on.into());
        m.insert("ExternalOn".into(), self.external_on.into());
        m.insert("EnforceRFC952".into(), self.enforce_rfc952.into());
        m.insert("SetTruncateBit".into(), self.set_truncate_bit.into());
        m.insert("EnumerationOn".into(), self.enumeration_on.into());
        m.insert("MesosHTTPSOn".into(), self.mesos_https_on.into());
        m.insert("CACertFile".into(), path_str(&self.ca_cert_file));
        m.insert("CertFile".into(), path_str(&self.cert_file));
        m.insert("KeyFile".into(), path_str(&self.key_file));
        let mut creds = Map::new();
        creds.insert(
            "Principal".into(),
            self.mesos_credentials.principal.clone().into(),
        );
        let secret = if self.mesos_credentials.secret.is_empty() {
            ""
        } else {
            "******"
        };
        creds.insert("Secret".into(), secret.into());
        m.insert("MesosCredentials".into(), Value::Object(creds));
        m.insert("IAMConfigFile".into(), path_str(&self.iam_config_file));
        m.insert(
            "MesosAuthentication".into(),
            self.mesos_authentication.as_str().into(),
        );
        // Added by this product.
        m.insert("StateFile".into(), path_str(&self.state_file));
        m.insert("EdnsUdpSize".into(), self.edns_udp_size.into());
        m.insert("StateMaxBytes".into(), self.state_max_bytes.into());
        m.insert("CacheSize".into(), self.cache_size.into());
        m.insert("HealthFilter".into(), self.health_filter.as_str().into());
        m.insert(
            "RefreshPriority".into(),
            self.refresh_priority.as_str().into(),
        );
        m.insert("PtrOn".into(), self.ptr_on.into());
        m.insert(
            "MesosHTTPSInsecure".into(),
            self.mesos_https_insecure.into(),
        );
        m.insert(
            "MaxStalenessSeconds".into(),
            self.max_staleness_seconds.into(),
        );
        m.insert("Workers".into(), self.workers.into());
        m.insert(
            "PinWorkers".into(),
            self.pin_workers.map_or(Value::Null, Value::Bool),
        );
        m.insert("UdpCoalesceMicros".into(), self.udp_coalesce_us.into());
        m.insert("Forwarders".into(), self.forwarders.into());
        m.insert("ForwardQueue".into(), self.forward_queue.into());
        let texts = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
        let prefixes = self.transfer_allow_from.iter().map(|p| p.to_string());
        m.insert("TransferAllowFrom".into(), texts(prefixes.collect()));
        let targets = self.notify_targets.iter().map(|a| a.to_string());
        m.insert("NotifyTargets".into(), texts(targets.collect()));
        let keys = self.tsig_keys.iter().map(|k| {
            serde_json::json!({"Name": k.name(), "Algorithm": crate::dns::tsig::ALGORITHM, "Secret": "******"})
        });
        m.insert("TsigKeys".into(), Value::Array(keys.collect()));
        m.insert("TcpMaxConnections".into(), self.tcp_max_connections.into());
        m.insert(
            "TcpIdleTimeoutSeconds".into(),
            self.tcp_idle_timeout_seconds.into(),
        );
        m.insert(
            "HttpMaxConnections".into(),
            self.http_max_connections.into(),
        );
        let allow = self.recursion_allow_from.iter().map(|p| p.to_string());
        m.insert("RecursionAllowFrom".into(), texts(allow.collect()));
        Value::Object(m)
    }
}

/// A resolver as configured: bare IP for port 53, else `ip:port` (`[v6]:port`).
fn resolver_string(r: SocketAddr) -> String {
    if r.port() == 53 {
        r.ip().to_string()
    } else {
        r.to_string()
    }
}

/// Replaces a `user:pass@` in a `zk://` URL with `******@`.
fn mask_userinfo(url: &str) -> String {
    let Some(rest) = url.strip_prefix("zk://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("zk://******@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Phase 2: checks in the order of behaviour §2.2 (our extra checks sit next to their
/// relatives, the new keys come last) and builds the typed [`Config`].
fn validate_raw(
    raw: Raw,
    resolv_conf: &Path,
    warnings: &mut Vec<String>,
) -> Result<Config, ConfigError> {
    // Services on, and something to read the state from.
    if !raw.dns_on && !raw.http_on {
        return Err(ConfigError::ServicesOff);
    }
    if raw.masters.is_empty() && raw.zk.is_empty() && raw.state_file.is_none() {
        return Err(ConfigError::NoMasters);
    }
    // Masters format (even with zk), then zk itself.
    let masters = validate_masters(&raw.masters)?;
    if !raw.zk.is_empty() {
        validate_zk(&raw.zk)?;
    }
    let listener = parse_listener("listener", &raw.listener)?;
    let http_listener = parse_listener("httplistener", &raw.http_listener)?;

    // Resolvers and zone resolvers, only when forwarding.
    let domain = raw.domain.to_lowercase();
    let (resolvers, zone_resolvers) = if raw.external_on {
        let resolvers = if raw.resolvers.is_empty() {
            resolv_conf_nameservers(resolv_conf, &|ip| is_local_address(ip, listener), warnings)?
        } else {
            parse_resolvers("resolvers", &raw.resolvers)?
        };
        (
            resolvers,
            validate_zone_resolvers(&raw.zone_resolvers, &domain)?,
        )
    } else {
        // Neither validated nor used: keep what parses, for /v1/config.
        let resolvers = raw
            .resolvers
            .iter()
            .filter_map(|r| parse_resolver(r))
            .collect();
        let zones = raw
            .zone_resolvers
            .iter()
            .map(|(z, rs)| {
                (
                    z.to_lowercase(),
                    rs.iter().filter_map(|r| parse_resolver(r)).collect(),
                )
            })
            .collect();
        (resolvers, zones)
    };

    let ip_sources = validate_ip_sources(&raw.ip_sources)?;

    // Timeouts. refreshSeconds <= 0 crashed the original; here it is a config error.
    if raw.refresh_seconds <= 0 {
        return Err(ConfigError::NotPositive {
            key: "refreshSeconds",
            value: raw.refresh_seconds,
        });
    }
    if raw.state_timeout_seconds <= 0 {
        return Err(ConfigError::InvalidHttpTimeout(raw.state_timeout_seconds));
    }
    // Decoding already bounds these; a Config built in code is checked again here.
    for (key, value) in [
        ("refreshSeconds", raw.refresh_seconds),
        ("stateTimeoutSeconds", raw.state_timeout_seconds),
        ("zkDetectionTimeout", raw.zk_detection_timeout),
        ("timeout", raw.timeout),
    ] {
        if !(0..=MAX_SECONDS).contains(&value) {
            return Err(out_of_range(key, value.to_string(), 0, MAX_SECONDS));
        }
    }

    if !is_valid_domain(&domain) {
        return Err(ConfigError::InvalidDomain(raw.domain));
    }

    // SOA names and serial.
    let soa_mname = soa_name("SOAMname", &raw.soa_mname, &raw.soa_mname)?;
    let soa_rname = soa_name("SOARname", &raw.soa_rname, &raw.soa_rname.replace('@', "."))?;
    let soa_serial = unix_now_u32();

    // Certificates.
    match (&raw.cert_file, &raw.key_file) {
        (Some(cert), None) => return Err(ConfigError::MissingKeyFile { cert: cert.clone() }),
        (None, Some(key)) => return Err(ConfigError::MissingCertFile { key: key.clone() }),
        _ => {}
    }
    check_pem("caCertFile", raw.ca_cert_file.as_deref(), "CERTIFICATE")?;
    check_pem("certFile", raw.cert_file.as_deref(), "CERTIFICATE")?;
    check_pem("keyFile", raw.key_file.as_deref(), "PRIVATE KEY")?;

    // Authentication.
    let mesos_authentication = match raw.mesos_authentication.as_str() {
        "" => MesosAuth::None,
        "basic" => MesosAuth::Basic,
        "iam" => MesosAuth::Iam,
        other => return Err(ConfigError::UnknownAuth(other.to_string())),
    };
    match mesos_authentication {
        MesosAuth::Basic if raw.mesos_credentials.is_empty() => {
            return Err(ConfigError::EmptyBasicCredentials);
        }
        MesosAuth::Iam => match &raw.iam_config_file {
            None => return Err(ConfigError::MissingIamFile),
            Some(p) => {
                read_iam_config(p)?;
            }
        },
        MesosAuth::None => {
            if !raw.mesos_credentials.is_empty() {
                warnings.push("mesosCredentials is set but mesosAuthentication is \"\": credentials are not used".into());
            }
            if let Some(p) = &raw.iam_config_file {
                warnings.push(format!(
                    "IAMConfigFile is {p:?} but mesosAuthentication is \"\": the IAM file is not used"
                ));
            }
        }
        MesosAuth::Basic => {}
    }

    // Keys added by this product.
    if raw.state_max_bytes == 0 {
        return Err(ConfigError::NotPositive {
            key: "stateMaxBytes",
            value: 0,
        });
    }
    let Some(refresh_priority) =
        crate::refresh_priority::RefreshPriority::parse(&raw.refresh_priority)
    else {
        return Err(ConfigError::InvalidValue {
            key: "refreshPriority",
            value: format!("{:?}", raw.refresh_priority),
            expected: "\"idle\" or \"normal\"",
        });
    };
    let health_filter = match raw.health_filter.as_str() {
        "off" => HealthFilter::Off,
        "exclude-unhealthy" => HealthFilter::ExcludeUnhealthy,
        other => {
            return Err(ConfigError::InvalidValue {
                key: "healthFilter",
                value: format!("{other:?}"),
                expected: "\"off\" or \"exclude-unhealthy\"",
            });
        }
    };
    let cache_size = usize::try_from(raw.cache_size)
        .map_err(|_| out_of_range("cacheSize", raw.cache_size.to_string(), 0, usize::MAX))?;
    if raw.max_staleness_seconds > MAX_SECONDS.unsigned_abs() {
        let value = raw.max_staleness_seconds.to_string();
        return Err(out_of_range("maxStalenessSeconds", value, 0, MAX_SECONDS));
    }
    if raw.edns_udp_size < 512 {
        let value = raw.edns_udp_size.to_string();
        return Err(out_of_range("ednsUdpSize", value, 512, u16::MAX));
    }
    let workers = usize::try_from(raw.workers)
        .ok()
        .filter(|&w| w as u64 <= MAX_WORKERS)
        .ok_or_else(|| out_of_range("workers", raw.workers.to_string(), 0, MAX_WORKERS))?;
    if raw.udp_coalesce_us > crate::dns::coalesce::MAX_WAIT_US {
        let value = raw.udp_coalesce_us.to_string();
        let max = crate::dns::coalesce::MAX_WAIT_US;
        return Err(out_of_range("udpCoalesceMicros", value, 0, max));
    }
    let forwarders = usize::try_from(raw.forwarders)
        .ok()
        .filter(|&f| (1..=MAX_FORWARDERS).contains(&(f as u64)))
        .ok_or_else(|| out_of_range("forwarders", raw.forwarders.to_string(), 1, MAX_FORWARDERS))?;
    let forward_queue = usize::try_from(raw.forward_queue)
        .ok()
        .filter(|&q| (1..=MAX_FORWARD_QUEUE).contains(&(q as u64)))
        .ok_or_else(|| {
            let value = raw.forward_queue.to_string();
            out_of_range("forwardQueue", value, 1, MAX_FORWARD_QUEUE)
        })?;
    let transfer_allow_from = raw
        .transfer_allow_from
        .iter()
        .map(|p| {
            crate::acl::Cidr::parse(p).ok_or_else(|| ConfigError::InvalidValue {
                key: "transferAllowFrom",
                value: format!("{p:?}"),
                expected: "an IP address or prefix (10.0.0.0/8, 2001:db8::/32)",
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let notify_targets = parse_resolvers("notifyTargets", &raw.notify_targets)?;
    let connections = |key: &str, v: u64| {
        usize::try_from(v)
            .ok()
            .filter(|_| (1..=MAX_CONNECTIONS).contains(&v))
            .ok_or_else(|| out_of_range(key, v.to_string(), 1, MAX_CONNECTIONS))
    };
    let tcp_max_connections = connections("tcpMaxConnections", raw.tcp_max_connections)?;
    let http_max_connections = connections("httpMaxConnections", raw.http_max_connections)?;
    if !(1..=MAX_IDLE_SECONDS).contains(&raw.tcp_idle_timeout_seconds) {
        let value = raw.tcp_idle_timeout_seconds.to_string();
        return Err(out_of_range(
            "tcpIdleTimeoutSeconds",
            value,
            1,
            MAX_IDLE_SECONDS,
        ));
    }
    let recursion_allow_from = raw
        .recursion_allow_from
        .iter()
        .map(|p| {
            crate::acl::Cidr::parse(p).ok_or_else(|| ConfigError::InvalidValue {
                key: "recursionAllowFrom",
                value: format!("{p:?}"),
                expected: "an IP address or prefix (10.0.0.0/8, 2001:db8::/32)",
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Config {
        zk: raw.zk,
        zk_detection_timeout: raw.zk_detection_timeout.unsigned_abs(),
        masters,
        refresh_seconds: raw.refresh_seconds.unsigned_abs(),
        state_timeout_seconds: raw.state_timeout_seconds.unsigned_abs(),
        ttl: raw.ttl,
        domain,
        port: raw.port,
        listener,
        http_listener,
        http_port: raw.http_port,
        dns_on: raw.dns_on,
        http_on: raw.http_on,
        external_on: raw.external_on,
        resolvers,
        zone_resolvers,
        timeout_seconds: if raw.timeout == 0 {
            5
        } else {
            raw.timeout.unsigned_abs()
        },
        soa_mname,
        soa_rname,
        soa_refresh: raw.soa_refresh,
        soa_retry: raw.soa_retry,
        soa_expire: raw.soa_expire,
        soa_minttl: raw.soa_minttl,
        soa_serial,
        recurse_on: raw.recurse_on,
        enforce_rfc952: raw.enforce_rfc952,
        set_truncate_bit: raw.set_truncate_bit,
        enumeration_on: raw.enumeration_on,
        ip_sources,
        srv_default_weight: raw.srv_default_weight,
        mesos_https_on: raw.mesos_https_on,
        mesos_https_insecure: raw.mesos_https_insecure,
        ca_cert_file: raw.ca_cert_file,
        cert_file: raw.cert_file,
        key_file: raw.key_file,
        mesos_authentication,
        mesos_credentials: raw.mesos_credentials,
        iam_config_file: raw.iam_config_file,
        file: raw.file,
        state_file: raw.state_file,
        edns_udp_size: raw.edns_udp_size,
        state_max_bytes: raw.state_max_bytes,
        cache_size,
        health_filter,
        ptr_on: raw.ptr_on,
        max_staleness_seconds: raw.max_staleness_seconds,
        workers,
        pin_workers: raw.pin_workers,
        udp_coalesce_us: raw.udp_coalesce_us,
        refresh_priority,
        forwarders,
        forward_queue,
        transfer_allow_from,
        notify_targets,
        tsig_keys: raw.tsig_keys,
        tcp_max_connections,
        tcp_idle_timeout_seconds: raw.tcp_idle_timeout_seconds,
        http_max_connections,
        recursion_allow_from,
    })
}

/// The current unix time truncated to 32 bits, as Go's `uint32(time.Now().Unix())`.
fn unix_now_u32() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs & u64::from(u32::MAX)) as u32
}

/// Splits `host:port` / `[v6]:port` like Go's `net.SplitHostPort`; the host keeps no brackets.
fn split_host_port(s: &str) -> Option<(&str, &str, bool)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port, true));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None; // IPv6 needs brackets
    }
    Some((host, port, false))
}

/// A port 1–65535 written as plain digits.
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&p| p != 0)
}

/// A hostname: dot-separated labels of letters, digits, `-` and `_`; a trailing dot is allowed.
fn is_valid_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Normalises one master: IPs canonicalised (IPv6 in brackets), hostnames lowercased.
fn normalise_master(m: &str) -> Option<String> {
    let (host, port, bracketed) = split_host_port(m)?;
    let port = parse_port(port)?;
    if bracketed {
        let ip: Ipv6Addr = host.parse().ok()?;
        return Some(format!("[{ip}]:{port}"));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(format!("{ip}:{port}"));
    }
    is_valid_hostname(host).then(|| format!("{}:{port}", host.to_ascii_lowercase()))
}

fn validate_masters(masters: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(masters.len());
    for m in masters {
        let norm =
            normalise_master(m).ok_or_else(|| ConfigError::InvalidMaster { value: m.clone() })?;
        if !seen.insert(norm.clone()) {
            return Err(ConfigError::DuplicateMaster { value: m.clone() });
        }
        out.push(norm);
    }
    Ok(out)
}

/// `zk://[user:pass@]host[:port][,host[:port]...]/path`.
fn validate_zk(zk: &str) -> Result<(), ConfigError> {
    let err = |reason| ConfigError::InvalidZk {
        value: mask_userinfo(zk),
        reason,
    };
    let rest = zk
        .strip_prefix("zk://")
        .ok_or_else(|| err("the scheme must be zk://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if path.trim_matches('/').is_empty() {
        return Err(err("missing znode path"));
    }
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hosts.is_empty() {
        return Err(err("no hosts"));
    }
    for host in hosts.split(',') {
        let ok = match split_host_port(host) {
            Some((h, p, bracketed)) => {
                parse_port(p).is_some()
                    && if bracketed {
                        h.parse::<Ipv6Addr>().is_ok()
                    } else {
                        is_valid_hostname(h)
                    }
            }
            None => is_valid_hostname(host),
        };
        if !ok {
            return Err(err("each host must be host or host:port"));
        }
    }
    Ok(())
}

fn parse_listener(key: &'static str, value: &str) -> Result<IpAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::InvalidListener {
        key,
        value: value.to_string(),
    })
}

/// `ip`, `ip:port`, `[v6]:port`, `[v6]` or bare `v6`; port 53 when none is given.
fn parse_resolver(r: &str) -> Option<SocketAddr> {
    if let Ok(ip) = r.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    if let Some(inner) = r.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| SocketAddr::new(IpAddr::V6(ip), 53));
    }
    let (host, port, bracketed) = split_host_port(r)?;
    let port = parse_port(port)?;
    let ip: IpAddr = if bracketed {
        IpAddr::V6(host.parse().ok()?)
    } else {
        IpAddr::V4(host.parse().ok()?)
    };
    Some(SocketAddr::new(ip, port))
}

fn parse_resolvers(key: &str, list: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(list.len());
    for r in list {
        let addr = parse_resolver(r).ok_or_else(|| ConfigError::InvalidResolver {
            key: key.to_string(),
            value: r.clone(),
        })?;
        if out.contains(&addr) {
            return Err(ConfigError::DuplicateResolver {
                key: key.to_string(),
                value: r.clone(),
            });
        }
        out.push(addr);
    }
    Ok(out)
}

/// True if `ip` belongs to this host: loopback, unspecified, the DNS `listener`, or an
/// address a UDP socket can be bound to (which the kernel allows only for local addresses).
fn is_local_address(ip: IpAddr, listener: IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || ip == listener
        || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The nameservers of a resolv.conf, port 53, minus local addresses and duplicates.
fn resolv_conf_nameservers(
    path: &Path,
    is_local: &dyn Fn(IpAddr) -> bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<SocketAddr>, ConfigError> {
    let bytes = read_bounded(path).map_err(|e| ConfigError::ResolvConf {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out: Vec<SocketAddr> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(word) = words.next() else { continue };
        // Drop an IPv6 zone (`fe80::1%eth0`): it cannot be used without a scope id anyway.
        let Ok(ip) = word.split('%').next().unwrap_or(word).parse::<IpAddr>() else {
            warnings.push(format!(
                "resolvers: ignoring nameserver {word:?} in {path:?}: not an IP address"
            ));
            continue;
        };
        let addr = SocketAddr::new(ip, 53);
        if !is_local(ip) && !out.contains(&addr) {
            out.push(addr);
        }
    }
    if out.is_empty() {
        warnings.push(format!(
            "resolvers: empty, and {path:?} lists no non-local nameserver: nothing to forward to"
        ));
    }
    Ok(out)
}

fn validate_zone_resolvers(
    zones: &BTreeMap<String, Vec<String>>,
    domain: &str,
) -> Result<BTreeMap<String, Vec<SocketAddr>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (zone_raw, list) in zones {
        let zone = zone_raw.to_lowercase();
        if !is_valid_domain(&zone) {
            return Err(ConfigError::InvalidZone {
                zone: zone_raw.clone(),
            });
        }
        if list.is_empty() {
            return Err(ConfigError::EmptyZone {
                zone: zone_raw.clone(),
            });
        }
        if zone == domain {
            return Err(ConfigError::ZoneIsDomain { zone });
        }
        let resolvers = parse_resolvers(&format!("zoneResolvers[{zone_raw:?}]"), list)?;
        if out.insert(zone.clone(), resolvers).is_some() {
            // Two spellings of one zone, e.g. "Consul" and "consul".
            return Err(ConfigError::AmbiguousZones {
                masked: format!(".{zone}"),
                by: format!(".{zone}"),
            });
        }
    }
    // No zone may be a dot-suffix of another zone or of the domain, either way.
    let mut names: Vec<String> = out.keys().map(|z| format!(".{z}")).collect();
    names.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    names.push(format!(".{domain}"));
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            if a.ends_with(b.as_str()) || b.ends_with(a.as_str()) {
                let (masked, by) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                return Err(ConfigError::AmbiguousZones {
                    masked: masked.clone(),
                    by: by.clone(),
                });
            }
        }
    }
    Ok(out)
}

fn validate_ip_sources(sources: &[String]) -> Result<Vec<IpSource>, ConfigError> {
    if sources.is_empty() {
        return Err(ConfigError::EmptyIpSources);
    }
    let mut out = Vec::with_capacity(sources.len());
    for s in sources {
        let src = IpSource::from_name(s).ok_or_else(|| ConfigError::InvalidIpSource(s.clone()))?;
        if out.contains(&src) {
            return Err(ConfigError::DuplicateIpSource(s.clone()));
        }
        out.push(src);
    }
    Ok(out)
}

/// `^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$`, plus the DNS length limits (labels <= 63, name <= 253).
fn is_valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Strips trailing dots, adds one, and checks the result can be written as a DNS name.
fn soa_name(key: &'static str, original: &str, value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim_end_matches('.');
    let err = |reason| ConfigError::InvalidName {
        key,
        value: original.to_string(),
        reason,
    };
    if trimmed.is_empty() {
        return Err(err("empty"));
    }
    if trimmed.len() > 253 {
        return Err(err("longer than 253 characters"));
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(err("empty label"));
        }
        if label.len() > 63 {
            return Err(err("label longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err("space, control or non-ASCII character"));
        }
    }
    Ok(format!("{trimmed}."))
}

/// A set certificate/key file must be readable and hold a PEM block of the expected kind.
fn check_pem(
    key: &'static str,
    path: Option<&Path>,
    expected: &'static str,
) -> Result<(), ConfigError> {
    let Some(path) = path else { return Ok(()) };
    let bytes = read_bounded(path).map_err(|e| ConfigError::UnreadableFile {
        key,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("-----BEGIN ")
            && l.ends_with("-----")
            && l.trim_end_matches('-').ends_with(expected)
    });
    if found {
        Ok(())
    } else {
        Err(ConfigError::NotPem {
            key,
            path: path.to_path_buf(),
            expected,
        })
    }
}

/// Reads and checks an `IAMConfigFile`: a JSON object with non-empty `uid`, `private_key`
/// (older files: `secret`) and an `http(s)://` `login_endpoint`; keys match case-insensitively.
pub fn read_iam_config(path: &Path) -> Result<IamConfig, ConfigError> {
    let bytes = read_bounded(path).map_err(|e| ConfigError::UnreadableFile {
        key: "IAMConfigFile",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let invalid = |reason: String| ConfigError::InvalidIamFile {
        path: path.to_path_buf(),
        reason,
    };
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("invalid IAM JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(invalid("invalid IAM JSON: not an object".into()));
    };
    let field = |name: &str| -> Result<Option<String>, ConfigError> {
        match map
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
        {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{name} is not a string"))),
        }
    };
    let uid = field("uid")?.unwrap_or_default();
    let private_key = match field("private_key")? {
        Some(k) if !k.is_empty() => k,
        _ => field("secret")?.unwrap_or_default(),
    };
    let login_endpoint = field("login_endpoint")?.unwrap_or_default();
    if uid.is_empty() {
        return Err(invalid("uid is empty".into()));
    }
    if private_key.is_empty() {
        return Err(invalid("private_key is empty".into()));
    }
    if login_endpoint.is_empty() {
        return Err(invalid("login_endpoint is empty".into()));
    }
    if !(login_endpoint.starts_with("http://") || login_endpoint.starts_with("https://")) {
        return Err(invalid(format!(
            "login_endpoint {login_endpoint:?} is not an http(s):// URL"
        )));
    }
    Ok(IamConfig {
        uid,
        private_key,
        login_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/mesos-dns/config.json.sample"
    );

    /// Parses with a resolv.conf that does not exist, so no test depends on the host's.
    fn parse(json: &str) -> Result<(Config, Vec<String>), ConfigError> {
        parse_str_with(
            json,
            Path::new("/etc/mesos-dns/config.json"),
            Path::new("/nonexistent/resolv.conf"),
        )
    }

    /// A config with one master plus `extra` (a comma-free-prefixed list of `"key": value`).
    fn with(extra: &str) -> String {
        if extra.is_empty() {
            r#"{"masters": ["10.0.0.1:5050"]}"#.to_string()
        } else {
            format!(r#"{{"masters": ["10.0.0.1:5050"], {extra}}}"#)
        }
    }

    fn ok(json: &str) -> (Config, Vec<String>) {
        match parse(json) {
            Ok(r) => r,
            Err(e) => panic!("{json} should load, got: {e}"),
        }
    }

    /// The error message; asserts it contains every `needle`.
    fn err(json: &str, needles: &[&str]) -> String {
        let msg = match parse(json) {
            Ok(_) => panic!("{json} should be rejected"),
            Err(e) => e.to_string(),
        };
        for n in needles {
            assert!(msg.contains(n), "error {msg:?} should contain {n:?}");
        }
        msg
    }

    fn temp_file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(contents.as_bytes()).expect("write temp file");
        f
    }

    #[test]
    #[allow(clippy::print_stdout)]
    fn sample_config_loads() {
        let path = Path::new(SAMPLE);
        if !path.exists() {
            println!("skipped: ../shared not present");
            return;
        }
        let (c, warnings) = load(path).expect("sample loads");
        assert_eq!(c.port, 8053);
        assert_eq!(c.ip_sources, vec![IpSource::Mesos, IpSource::Host]);
        assert_eq!(c.masters, vec!["127.0.0.1:5050".to_string()]);
        assert_eq!(c.zk, "zk://127.0.0.1:2181/mesos");
        assert_eq!(c.resolvers, vec!["8.8.8.8:53".parse().expect("addr")]);
        assert_eq!(c.soa_mname, "ns1.mesos.");
        assert_eq!(c.soa_rname, "root.ns1.mesos.");
        assert_eq!(c.http_port, 8123);
        assert!(c.file.is_absolute());
        assert!(!c.enforce_rfc952);
        assert_eq!(
            warnings,
            vec![r#"unknown config key "ns" ignored"#.to_string()]
        );
    }

    #[test]
    fn defaults_match_spec() {
        let (c, warnings) = ok(r#"{"stateFile": "/tmp/state.json"}"#);
        assert!(warnings.is_empty());
        assert_eq!(c.zk, "");
        assert_eq!(c.zk_detection_timeout, 30);
        assert!(c.masters.is_empty());
        assert_eq!(c.refresh_seconds, 60);
        assert_eq!(c.state_timeout_seconds, 300);
        assert_eq!(c.ttl, 60);
        assert_eq!(c.domain, "mesos");
        assert_eq!(c.port, 53);
        assert_eq!(c.listener, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(c.http_listener, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(c.http_port, 8123);
        assert!(c.dns_on && c.http_on && c.external_on);
        assert_eq!(c.resolvers, vec!["8.8.8.8:53".parse().expect("addr")]);
        assert!(c.zone_resolvers.is_empty());
        assert_eq!(c.timeout_seconds, 5);
        assert_eq!(c.soa_mname, "ns1.mesos.");
        assert_eq!(c.soa_rname, "root.ns1.mesos.");
        assert_eq!(
            (c.soa_refresh, c.soa_retry, c.soa_expire, c.soa_minttl),
            (60, 600, 86400, 60)
        );
        assert!(c.recurse_on);
        assert!(!c.enforce_rfc952);
        assert!(c.set_truncate_bit);
        assert!(c.enumeration_on);
        assert_eq!(
            c.ip_sources,
            vec![IpSource::NetInfo, IpSource::Mesos, IpSource::Host]
        );
        assert_eq!(c.srv_default_weight, 1);
        assert!(!c.mesos_https_on && !c.mesos_https_insecure);
        assert_eq!(
            (
                c.ca_cert_file.clone(),
                c.cert_file.clone(),
                c.key_file.clone()
            ),
            (None, None, None)
        );
        assert_eq!(c.mesos_authentication, MesosAuth::None);
        assert_eq!(c.mesos_credentials, Credentials::default());
        assert_eq!(c.iam_config_file, None);
        assert_eq!(c.state_file, Some(PathBuf::from("/tmp/state.json")));
        assert_eq!(c.edns_udp_size, 1232);
        assert_eq!(c.state_max_bytes, 268_435_456);
        assert_eq!(c.cache_size, 10_000);
        assert_eq!(c.health_filter, HealthFilter::Off);
        assert!(!c.ptr_on);
        assert_eq!(c.max_staleness_seconds, 0);
        assert_eq!(c.workers, 0);
        assert_eq!(c.udp_coalesce_us, 100);
        assert_eq!(c.pin_workers, None);
        assert_eq!(
            c.refresh_priority,
            crate::refresh_priority::RefreshPriority::Idle
        );
        assert_eq!(c.file, PathBuf::from("/etc/mesos-dns/config.json"));
    }

    #[test]
    fn default_config_validates_with_a_state_file() {
        let mut c = default_config();
        c.state_file = Some(PathBuf::from("/tmp/state.json"));
        c.port = 0;
        c.timeout_seconds = 0;
        let warnings = c.validate().expect("validates");
        assert!(warnings.is_empty());
        assert_eq!(c.timeout_seconds, 5);
        assert_eq!(c.port, 0);
        assert!(c.soa_serial > 0);
        // Validating again changes nothing but the serial.
        let before = c.masked_json();
        c.validate().expect("validates twice");
        let mut after = c.masked_json();
        after["SOASerial"] = before["SOASerial"].clone();
        assert_eq!(before, after);
    }

    #[test]
    fn keys_are_case_insensitive() {
        assert_eq!(ok(&with(r#""REFRESHSECONDS": 7"#)).0.refresh_seconds, 7);
        assert_eq!(ok(&with(r#""refreshseconds": 8"#)).0.refresh_seconds, 8);
        assert_eq!(ok(&with(r#""RefreshSeconds": 9"#)).0.refresh_seconds, 9);
        let c = ok(&with(
            r#""ipsources": ["host"], "soamname": "ns2.mesos", "HTTPPORT": 1"#,
        ))
        .0;
        assert_eq!(c.ip_sources, vec![IpSource::Host]);
        assert_eq!(c.soa_mname, "ns2.mesos.");
        assert_eq!(c.http_port, 1);
        let c = ok(&with(
            r#""MESOSCREDENTIALS": {"PRINCIPAL": "p", "Secret": "s"}"#,
        ))
        .0;
        assert_eq!(c.mesos_credentials.principal, "p");
        assert_eq!(c.mesos_credentials.secret, "s");
    }

    #[test]
    fn last_spelling_of_a_key_wins() {
        let c = ok(&with(r#""ttl": 1, "TTL": 2"#)).0;
        assert_eq!(c.ttl, 2);
    }

    #[test]
    fn null_keeps_default() {
        let json = with(
            r#""ttl": null, "domain": null, "resolvers": null, "IPSources": null,
               "zoneResolvers": null, "dnson": null, "mesosCredentials": null, "pinWorkers": null"#,
        );
        let (c, warnings) = ok(&json);
        assert!(warnings.is_empty());
        assert_eq!(c.ttl, 60);
        assert_eq!(c.domain, "mesos");
        assert_eq!(c.resolvers.len(), 1);
        assert_eq!(c.ip_sources.len(), 3);
        assert!(c.dns_on);
        assert_eq!(c.pin_workers, None);
    }

    #[test]
    fn unknown_keys_warn() {
        let (_, warnings) = ok(&with(
            r#""ns": "ns1", "email": "x", "mesosCredentials": {"user": "u"}"#,
        ));
        assert_eq!(
            warnings,
            vec![
                r#"unknown config key "ns" ignored"#.to_string(),
                r#"unknown config key "email" ignored"#.to_string(),
                r#"unknown config key "mesosCredentials.user" ignored"#.to_string(),
            ]
        );
        match check_strict(&warnings) {
            Err(ConfigError::UnknownKey { key }) => assert_eq!(key, "ns"),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        assert!(check_strict(&[]).is_ok());
    }

    #[test]
    fn every_key_is_applied() {
        let candidates = [
            Value::Bool(true),
            Value::from(1),
            Value::from(600),
            Value::from("x"),
            Value::Array(vec![]),
            Value::Object(Map::new()),
        ];
        for key in KEYS {
            let mut raw = Raw::default();
            let mut warnings = Vec::new();
            let accepted = candidates
                .iter()
                .filter(|v| raw.apply(key, v, &mut warnings).is_ok())
                .count();
            assert!(accepted >= 1, "{key} accepts nothing");
            assert!(warnings.is_empty(), "{key}: {warnings:?}");
        }
    }

    #[test]
    fn wrong_json_type_names_the_key() {
        err(
            &with(r#""ttl": "x""#),
            &[r#"config key "ttl""#, "expected an integer", r#"got "x""#],
        );
        err(&with(r#""dnson": "yes""#), &[r#""dnson""#, "true or false"]);
        err(
            &with(r#""domain": 5"#),
            &[r#""domain""#, "a string", "got 5"],
        );
        err(
            r#"{"masters": "10.0.0.1:5050"}"#,
            &[r#""masters""#, "a list of strings"],
        );
        err(
            r#"{"masters": ["10.0.0.1:5050", 5]}"#,
            &[r#""masters""#, "a list of strings"],
        );
        err(
            &with(r#""zoneResolvers": ["1.1.1.1"]"#),
            &["zoneResolvers", "an object"],
        );
        err(
            &with(r#""mesosCredentials": "p:s""#),
            &["mesosCredentials", "an object", "got a string"],
        );
        let msg = err(
            &with(r#""mesosCredentials": {"secret": 12345}"#),
            &["mesosCredentials.secret"],
        );
        assert!(!msg.contains("12345"), "secret leaked: {msg}");
    }

    #[test]
    fn non_integer_numbers_are_rejected() {
        err(
            &with(r#""ttl": 60.5"#),
            &["ttl", "expected an integer", "60.5"],
        );
        err(&with(r#""port": 53.0"#), &["port", "expected an integer"]);
        err(
            &with(r#""refreshSeconds": 1e3"#),
            &["refreshSeconds", "expected an integer"],
        );
    }

    #[test]
    fn numbers_are_range_checked() {
        err(
            &with(r#""port": 65536"#),
            &["port: 65536 is out of range 0..=65535"],
        );
        err(&with(r#""port": -1"#), &["port: -1 is out of range"]);
        err(&with(r#""httpport": 70000"#), &["httpport: 70000"]);
        err(
            &with(r#""ttl": -1"#),
            &["ttl: -1 is out of range 0..=2147483647"],
        );
        err(&with(r#""ttl": 2147483648"#), &["ttl: 2147483648"]);
        err(
            &with(r#""SOARefresh": 4294967296"#),
            &["SOARefresh: 4294967296"],
        );
        err(&with(r#""SOAExpire": -5"#), &["SOAExpire: -5"]);
        err(
            &with(r#""srvRecordDefaultWeight": 65536"#),
            &["srvRecordDefaultWeight: 65536"],
        );
        err(
            &with(r#""refreshSeconds": 99999999999999999999"#),
            &["refreshSeconds", "out of range"],
        );
        err(
            &with(r#""zkDetectionTimeout": -1"#),
            &["zkDetectionTimeout: -1"],
        );
        err(&with(r#""timeout": -1"#), &["timeout: -1"]);
        let c = ok(&with(r#""SOARefresh": 4294967295, "ttl": 2147483647"#)).0;
        assert_eq!((c.soa_refresh, c.ttl), (u32::MAX, i32::MAX as u32));
    }

    #[test]
    fn port_zero_is_allowed() {
        let c = ok(&with(r#""port": 0, "httpport": 0"#)).0;
        assert_eq!((c.port, c.http_port), (0, 0));
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nope.json");
        let msg = load(&path).expect_err("missing").to_string();
        assert_eq!(msg, format!("missing configuration file: {path:?}"));
    }

    #[test]
    fn relative_path_is_made_absolute() {
        let p = resolve_path(Path::new("config.json"));
        assert!(p.is_absolute());
        assert!(p.ends_with("config.json"));
    }

    #[test]
    fn json_syntax_error_is_an_error() {
        let f = temp_file(r#"{"masters": ["10.0.0.1:5050"],}"#);
        let msg = load(f.path()).expect_err("bad json").to_string();
        assert!(msg.starts_with("failed to unmarshal config file"), "{msg}");
        err("[1, 2]", &["failed to unmarshal", "expected a JSON object"]);
    }

    #[test]
    fn load_stores_the_absolute_path() {
        let f = temp_file(&with(""));
        let (c, _) = load(f.path()).expect("loads");
        assert_eq!(c.file, f.path());
    }

    #[test]
    fn dns_or_http_must_be_on() {
        err(
            &with(r#""dnson": false, "httpon": false"#),
            &["either DNS or HTTP server should be on"],
        );
        ok(&with(r#""dnson": false"#));
        ok(&with(r#""httpon": false"#));
    }

    #[test]
    fn masters_zk_or_state_file_required() {
        err("{}", &["masters:", "zk", "stateFile"]);
        ok(r#"{"zk": "zk://10.0.0.1:2181/mesos"}"#);
        ok(r#"{"stateFile": "state.json"}"#);
    }

    #[test]
    fn masters_must_be_host_port() {
        for bad in [
            "1.2.3.4", "::1:5050", "h:0", "h:65536", "h:abc", "h:", ":5050", "", "[::1]",
            "[x]:5050", "a b:1",
        ] {
            err(
                &format!(r#"{{"masters": [{bad:?}]}}"#),
                &[&format!("masters: {bad:?} is not host:port")],
            );
        }
    }

    #[test]
    fn masters_are_normalised() {
        let c = ok(r#"{"masters": ["10.0.0.1:5050", "[0:0::1]:5050", "Master.Mesos:5050"]}"#).0;
        assert_eq!(
            c.masters,
            vec!["10.0.0.1:5050", "[::1]:5050", "master.mesos:5050"]
        );
    }

    #[test]
    fn masters_duplicates_are_rejected() {
        err(
            r#"{"masters": ["[::1]:5050", "[0::1]:5050"]}"#,
            &[r#"masters: duplicate master "[0::1]:5050""#],
        );
        err(
            r#"{"masters": ["m:5050", "M:5050"]}"#,
            &["duplicate master"],
        );
        ok(r#"{"masters": ["10.0.0.1:5050", "10.0.0.1:5051"]}"#);
    }

    #[test]
    fn masters_validated_even_with_zk() {
        err(
            r#"{"zk": "zk://10.0.0.1:2181/mesos", "masters": ["nope"]}"#,
            &[r#"masters: "nope""#],
        );
    }

    #[test]
    fn zk_must_be_a_zk_url() {
        err(
            r#"{"zk": "http://10.0.0.1:2181/mesos"}"#,
            &["zk:", "http://10.0.0.1:2181/mesos", "zk://"],
        );
        err(r#"{"zk": "zk:///mesos"}"#, &["zk:", "no hosts"]);
        err(r#"{"zk": "zk://10.0.0.1:2181"}"#, &["zk:", "path"]);
        err(r#"{"zk": "zk://10.0.0.1:2181/"}"#, &["zk:", "path"]);
        err(r#"{"zk": "zk://a:1,,b:2/mesos"}"#, &["zk:", "host"]);
        let msg = err(r#"{"zk": "zk://user:pw@/mesos"}"#, &["zk:"]);
        assert!(!msg.contains("pw"), "{msg}");
        ok(r#"{"zk": "zk://user:pw@10.0.0.1:2181,zk2,[::1]:2181/mesos"}"#);
    }

    #[test]
    fn listener_must_be_an_ip() {
        err(
            &with(r#""listener": "localhost""#),
            &[r#"listener: "localhost" is not an IP address"#],
        );
        err(
            &with(r#""httplistener": "0.0.0.0:80""#),
            &[r#"httplistener: "0.0.0.0:80""#],
        );
        let c = ok(&with(r#""listener": "::1", "httplistener": "127.0.0.1""#)).0;
        assert_eq!(c.listener, IpAddr::V6(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn resolvers_must_be_ip_or_ip_port() {
        let c = ok(&with(
            r#""resolvers": ["1.1.1.1", "1.0.0.1:5353", "[::1]:53", "::2", "[::3]"]"#,
        ))
        .0;
        let want: Vec<SocketAddr> = [
            "1.1.1.1:53",
            "1.0.0.1:5353",
            "[::1]:53",
            "[::2]:53",
            "[::3]:53",
        ]
        .iter()
        .map(|s| s.parse().expect("addr"))
        .collect();
        assert_eq!(c.resolvers, want);
        for bad in ["dns.google", "1.1.1.1:0", "1.1.1.1:99999", "[::1]:x", ""] {
            err(
                &with(&format!(r#""resolvers": [{bad:?}]"#)),
                &[&format!("resolvers: {bad:?} is not ip or ip:port")],
            );
        }
    }

    #[test]
    fn resolvers_duplicates_are_rejected() {
        err(
            &with(r#""resolvers": ["8.8.8.8", "8.8.8.8:53"]"#),
            &[r#"resolvers: duplicate resolver "8.8.8.8:53""#],
        );
        ok(&with(r#""resolvers": ["8.8.8.8", "8.8.8.8:5353"]"#));
    }

    #[test]
    fn resolvers_not_validated_when_external_off() {
        let c = ok(&with(
            r#""externalon": false, "resolvers": ["bad", "9.9.9.9"], "zoneResolvers": {"x..y": []}"#,
        ))
        .0;
        assert_eq!(c.resolvers, vec!["9.9.9.9:53".parse().expect("addr")]);
    }

    #[test]
    fn empty_resolvers_come_from_resolv_conf() {
        let f = temp_file(
            "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver 10.9.9.9\n\
             nameserver 192.0.2.1\nnameserver 2001:db8::1\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\n\
             nameserver bogus\noptions ndots:2\n",
        );
        let local = |ip: IpAddr| ip.is_loopback() || ip == IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
        let mut warnings = Vec::new();
        let got = resolv_conf_nameservers(f.path(), &local, &mut warnings).expect("reads");
        let want: Vec<SocketAddr> = ["192.0.2.1:53", "[2001:db8::1]:53", "[fe80::1]:53"]
            .iter()
            .map(|s| s.parse().expect("addr"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(warnings.len(), 1, "{warnings:?}");

        // Through the whole pipeline: loopback and the listener are local.
        let f = temp_file("nameserver 127.0.0.1\nnameserver 192.0.2.7\nnameserver 192.0.2.9\n");
        let json = with(r#""resolvers": [], "listener": "192.0.2.9""#);
        let (c, _) = parse_str_with(&json, Path::new("/c.json"), f.path()).expect("loads");
        assert_eq!(c.resolvers, vec!["192.0.2.7:53".parse().expect("addr")]);
    }

    #[test]
    fn unreadable_resolv_conf_is_an_error() {
        err(
            &with(r#""resolvers": []"#),
            &["resolvers:", "/nonexistent/resolv.conf"],
        );
        ok(&with(r#""resolvers": [], "externalon": false"#));
    }

    #[test]
    fn zone_resolvers_spec_examples() {
        let zr = |zones: &str| {
            with(&format!(
                r#""domain": "dc.mesos", "zoneResolvers": {{{zones}}}"#
            ))
        };
        err(
            &zr(r#""site.dc.mesos": ["1.1.1.1"]"#),
            &["zoneResolvers: ambiguous zone resolvers: .site.dc.mesos is masked by .dc.mesos"],
        );
        let c = ok(&zr(r#""acdc.mesos": ["1.1.1.1"]"#)).0;
        assert_eq!(
            c.zone_resolvers["acdc.mesos"],
            vec!["1.1.1.1:53".parse().expect("addr")]
        );
        err(
            &zr(r#""abc.com": ["1.1.1.1"], "com": ["1.0.0.1"]"#),
            &["ambiguous zone resolvers: .abc.com is masked by .com"],
        );
    }

    #[test]
    fn zone_resolvers_domain_masked_by_zone() {
        err(
            &with(r#""domain": "dc.mesos", "zoneResolvers": {"mesos": ["1.1.1.1"]}"#),
            &["ambiguous zone resolvers: .dc.mesos is masked by .mesos"],
        );
        err(
            &with(r#""zoneResolvers": {"Consul": ["1.1.1.1"], "consul": ["1.1.1.2"]}"#),
            &["ambiguous zone resolvers: .consul is masked by .consul"],
        );
    }

    #[test]
    fn zone_resolvers_empty_list() {
        err(
            &with(r#""zoneResolvers": {"consul": []}"#),
            &["zoneResolvers: field ZoneResolver consul is empty"],
        );
        err(
            &with(r#""zoneResolvers": {"consul": null}"#),
            &["field ZoneResolver consul is empty"],
        );
    }

    #[test]
    fn zone_resolvers_not_the_domain() {
        err(
            &with(r#""zoneResolvers": {"Mesos": ["1.1.1.1"]}"#),
            &["zoneResolvers:", "Mesos domain (mesos)"],
        );
    }

    #[test]
    fn zone_resolvers_zone_must_be_a_domain() {
        err(
            &with(r#""zoneResolvers": {"a..b": ["1.1.1.1"]}"#),
            &[r#"zoneResolvers: "a..b" is not a valid domain name"#],
        );
        err(
            &with(r#""zoneResolvers": {"consul.": ["1.1.1.1"]}"#),
            &[r#""consul.""#],
        );
    }

    #[test]
    fn zone_resolvers_resolvers_follow_resolver_rules() {
        err(
            &with(r#""zoneResolvers": {"consul": ["1.1.1.1", "x"]}"#),
            &[r#"zoneResolvers["consul"]: "x" is not ip or ip:port"#],
        );
        err(
            &with(r#""zoneResolvers": {"consul": ["1.1.1.1", "1.1.1.1"]}"#),
            &[r#"zoneResolvers["consul"]: duplicate resolver "1.1.1.1""#],
        );
    }

    #[test]
    fn ip_sources_invalid() {
        err(
            &with(r#""IPSources": ["host", "x"]"#),
            &[r#"IPSources: invalid ip source "x""#],
        );
        err(
            &with(r#""IPSources": ["Host"]"#),
            &[r#"invalid ip source "Host""#],
        );
    }

    #[test]
    fn ip_sources_empty() {
        err(
            &with(r#""IPSources": []"#),
            &["IPSources: empty ip sources"],
        );
    }

    #[test]
    fn ip_sources_duplicate() {
        err(
            &with(r#""IPSources": ["host", "mesos", "host"]"#),
            &[r#"IPSources: duplicate ip source "host""#],
        );
    }

    #[test]
    fn ip_sources_all_four() {
        let c = ok(&with(
            r#""IPSources": ["docker", "netinfo", "host", "mesos"]"#,
        ))
        .0;
        assert_eq!(
            c.ip_sources,
            vec![
                IpSource::Docker,
                IpSource::NetInfo,
                IpSource::Host,
                IpSource::Mesos
            ]
        );
    }

    #[test]
    fn refresh_seconds_must_be_positive() {
        err(
            &with(r#""refreshSeconds": 0"#),
            &["refreshSeconds: 0 must be > 0"],
        );
        err(
            &with(r#""refreshSeconds": -5"#),
            &["refreshSeconds: -5 must be > 0"],
        );
    }

    #[test]
    fn state_timeout_must_be_positive() {
        err(
            &with(r#""stateTimeoutSeconds": 0"#),
            &["stateTimeoutSeconds", "Invalid HTTP Timeout: 0"],
        );
        err(
            &with(r#""stateTimeoutSeconds": -1"#),
            &["Invalid HTTP Timeout: -1"],
        );
    }

    #[test]
    fn timeout_zero_means_five() {
        assert_eq!(ok(&with(r#""timeout": 0"#)).0.timeout_seconds, 5);
        assert_eq!(ok(&with(r#""timeout": 2"#)).0.timeout_seconds, 2);
    }

    #[test]
    fn domain_is_lowercased() {
        assert_eq!(ok(&with(r#""domain": "DC.Mesos""#)).0.domain, "dc.mesos");
    }

    #[test]
    fn domain_must_be_valid() {
        for bad in ["a..b", ".mesos", "mesos.", "me_sos", "", "a b"] {
            err(
                &with(&format!(r#""domain": {bad:?}"#)),
                &[&format!("domain: {bad:?} is not a valid domain name")],
            );
        }
    }

    #[test]
    fn soa_names_are_normalised() {
        let c = ok(&with(
            r#""SOAMname": "ns9.mesos...", "SOARname": "admin@example.com.""#,
        ))
        .0;
        assert_eq!(c.soa_mname, "ns9.mesos.");
        assert_eq!(c.soa_rname, "admin.example.com.");
        err(
            &with(r#""SOAMname": """#),
            &[r#"SOAMname: "" is not a valid DNS name"#],
        );
        err(
            &with(r#""SOARname": "a..b""#),
            &[r#"SOARname: "a..b""#, "empty label"],
        );
    }

    #[test]
    fn soa_serial_is_the_start_time() {
        let before = unix_now_u32();
        let c = ok(&with(r#""SOASerial": 7"#)).0;
        assert!(c.soa_serial >= before && c.soa_serial <= unix_now_u32());
    }

    #[test]
    fn cert_without_key_is_an_error() {
        let cert = temp_file("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n");
        let json = with(&format!(r#""certFile": {:?}"#, cert.path()));
        err(&json, &["keyFile", "certFile", "Missing private key"]);
    }

    #[test]
    fn key_without_cert_is_an_error() {
        err(
            &with(r#""keyFile": "/k.pem""#),
            &["certFile", "/k.pem", "Missing certificate"],
        );
    }

    #[test]
    fn cert_files_must_be_readable_pem() {
        err(
            &with(r#""caCertFile": "/nonexistent/ca.pem""#),
            &["caCertFile: cannot read", "/nonexistent/ca.pem"],
        );
        let junk = temp_file("not a certificate\n");
        let json = with(&format!(r#""caCertFile": {:?}"#, junk.path()));
        err(&json, &["caCertFile", "no PEM CERTIFICATE"]);
        let cert = temp_file("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n");
        let key =
            temp_file("-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----\n");
        let json = with(&format!(
            r#""mesosHTTPSOn": true, "caCertFile": {c:?}, "certFile": {c:?}, "keyFile": {k:?}"#,
            c = cert.path(),
            k = key.path()
        ));
        let c = ok(&json).0;
        assert_eq!(c.key_file.as_deref(), Some(key.path()));
        let json = with(&format!(
            r#""certFile": {c:?}, "keyFile": {c:?}"#,
            c = cert.path()
        ));
        err(&json, &["keyFile", "no PEM PRIVATE KEY"]);
    }

    #[test]
    fn auth_must_be_known() {
        err(
            &with(r#""mesosAuthentication": "kerberos""#),
            &[r#"mesosAuthentication: "kerberos""#],
        );
    }

    #[test]
    fn auth_basic_needs_credentials() {
        err(
            &with(r#""mesosAuthentication": "basic""#),
            &["mesosCredentials", "basic"],
        );
        let c = ok(&with(
            r#""mesosAuthentication": "basic", "mesosCredentials": {"principal": "p", "secret": "s"}"#,
        ))
        .0;
        assert_eq!(c.mesos_authentication, MesosAuth::Basic);
        assert_eq!(format!("{:?}", c.mesos_credentials), "p:******");
    }

    #[test]
    fn auth_iam_needs_a_complete_file() {
        err(
            &with(r#""mesosAuthentication": "iam""#),
            &["IAMConfigFile", "iam"],
        );
        err(
            &with(r#""mesosAuthentication": "iam", "IAMConfigFile": "/nonexistent/iam.json""#),
            &["IAMConfigFile: cannot read", "/nonexistent/iam.json"],
        );
        let iam = |body: &str| temp_file(body);
        let cases = [
            ("not json", "invalid IAM JSON"),
            (
                r#"{"private_key": "k", "login_endpoint": "https://x/login"}"#,
                "uid is empty",
            ),
            (
                r#"{"uid": "u", "login_endpoint": "https://x/login"}"#,
                "private_key is empty",
            ),
            (
                r#"{"uid": "u", "private_key": "k"}"#,
                "login_endpoint is empty",
            ),
            (
                r#"{"uid": "u", "private_key": "k", "login_endpoint": "x"}"#,
                "not an http(s):// URL",
            ),
        ];
        for (body, needle) in cases {
            let f = iam(body);
            let json = with(&format!(
                r#""mesosAuthentication": "iam", "IAMConfigFile": {:?}"#,
                f.path()
            ));
            err(&json, &["IAMConfigFile", needle]);
        }
        let f = iam(
            r#"{"uid": "u", "private_key": "-----BEGIN", "login_endpoint": "https://m/acs/api/v1/auth/login"}"#,
        );
        let json = with(&format!(
            r#""mesosAuthentication": "iam", "IAMConfigFile": {:?}"#,
            f.path()
        ));
        assert_eq!(ok(&json).0.mesos_authentication, MesosAuth::Iam);
        let iam_config = read_iam_config(f.path()).expect("reads");
        assert_eq!(iam_config.uid, "u");
        assert!(!format!("{iam_config:?}").contains("BEGIN"));
    }

    #[test]
    fn credentials_without_auth_warn() {
        let (c, warnings) = ok(&with(
            r#""mesosCredentials": {"principal": "p"}, "IAMConfigFile": "/x.json""#,
        ));
        assert_eq!(c.mesos_authentication, MesosAuth::None);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("mesosCredentials"));
        assert!(warnings[1].contains("IAMConfigFile"));
    }

    #[test]
    fn new_keys_are_read() {
        let c = ok(&with(
            r#""stateFile": "s.json", "ednsUdpSize": 4096, "stateMaxBytes": 1024, "cacheSize": 0,
               "healthFilter": "exclude-unhealthy", "ptrOn": true, "mesosHTTPSInsecure": true,
               "maxStalenessSeconds": 120, "workers": 4, "pinWorkers": false,
               "udpCoalesceMicros": 0"#,
        ))
        .0;
        assert_eq!(c.udp_coalesce_us, 0);
        assert_eq!(c.state_file, Some(PathBuf::from("s.json")));
        assert_eq!(
            (c.edns_udp_size, c.state_max_bytes, c.cache_size),
            (4096, 1024, 0)
        );
        assert_eq!(c.health_filter, HealthFilter::ExcludeUnhealthy);
        assert!(c.ptr_on && c.mesos_https_insecure);
        assert_eq!(
            (c.max_staleness_seconds, c.workers, c.pin_workers),
            (120, 4, Some(false))
        );
    }

    #[test]
    fn forwarder_keys_default_read_and_validate() {
        let c = ok(&with("")).0;
        assert_eq!((c.forwarders, c.forward_queue), (2, 1024));
        let c = ok(&with(r#""forwarders": 4, "FORWARDQUEUE": 1"#)).0;
        assert_eq!((c.forwarders, c.forward_queue), (4, 1));
        err(
            &with(r#""forwarders": 0"#),
            &["forwarders: 0 is out of range 1..=64"],
        );
        err(&with(r#""forwarders": 65"#), &["forwarders: 65"]);
        err(
            &with(r#""forwardQueue": 0"#),
            &["forwardQueue: 0 is out of range"],
        );
        let mut c = default_config();
        c.state_file = Some(PathBuf::from("s.json"));
        c.forwarders = 0;
        assert!(c.validate().is_err());
        c.forwarders = 1;
        c.forward_queue = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn transfer_keys_default_read_validate_and_mask() {
        let c = ok(&with("")).0;
        assert!(c.transfer_allow_from.is_empty() && c.notify_targets.is_empty());
        assert!(c.tsig_keys.is_empty());
        let (c, warnings) = ok(&with(
            r#""transferAllowFrom": ["127.0.0.0/8", "10.1.2.3", "2001:db8::/32"],
               "NOTIFYTARGETS": ["127.0.0.1:5353", "10.0.0.1"],
               "tsigKeys": [{"Name": "Xfr.", "secret": "c2VjcmV0", "extra": 1}]"#,
        ));
        let prefixes: Vec<String> = c
            .transfer_allow_from
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(prefixes, ["127.0.0.0/8", "10.1.2.3/32", "2001:db8::/32"]);
        assert_eq!(
            c.notify_targets,
            [
                "127.0.0.1:5353".parse().unwrap(),
                "10.0.0.1:53".parse().unwrap()
            ]
        );
        assert_eq!(c.tsig_keys[0].name(), "xfr.");
        assert!(warnings.iter().any(|w| w.contains("tsigKeys.extra")));
        let j = c.masked_json();
        assert_eq!(
            j["TsigKeys"],
            serde_json::json!([{"Name": "xfr.", "Algorithm": "hmac-sha256", "Secret": "******"}])
        );
        assert_eq!(
            j["NotifyTargets"],
            serde_json::json!(["127.0.0.1:5353", "10.0.0.1:53"])
        );
        // The inverse of validation keeps everything.
        let mut again = c.clone();
        again.validate().unwrap();
        assert_eq!(again.tsig_keys, c.tsig_keys);
        assert_eq!(again.transfer_allow_from, c.transfer_allow_from);
        assert_eq!(again.notify_targets, c.notify_targets);

        err(
            &with(r#""transferAllowFrom": ["10.0.0.0/33"]"#),
            &["transferAllowFrom", "10.0.0.0/33"],
        );
        err(
            &with(r#""transferAllowFrom": ["any"]"#),
            &["transferAllowFrom"],
        );
        err(
            &with(r#""notifyTargets": ["ns2:53"]"#),
            &["notifyTargets", "ns2:53"],
        );
        err(
            &with(r#""notifyTargets": ["10.0.0.1", "10.0.0.1:53"]"#),
            &["notifyTargets: duplicate"],
        );
        let e = err(
            &with(r#""tsigKeys": [{"name": "k", "secret": "%%not-base64%%"}]"#),
            &["tsigKeys", "not base64"],
        );
        assert!(!e.contains("%%not-base64%%"), "{e}");
        err(
            &with(r#""tsigKeys": [{"name": "k", "algorithm": "hmac-md5", "secret": "c2VjcmV0"}]"#),
            &["tsigKeys", "hmac-md5"],
        );
        err(
            &with(
                r#""tsigKeys": [{"name": "k", "secret": "YQ=="}, {"name": "K.", "secret": "Yg=="}]"#,
            ),
            &["duplicate key name"],
        );
        let e = err(
            &with(r#""tsigKeys": [{"name": "k", "secret": 12345}]"#),
            &["tsigKeys.secret"],
        );
        assert!(!e.contains("12345"), "{e}");
    }

    #[test]
    fn limit_keys_default_read_validate_and_show() {
        let c = ok(&with("")).0;
        assert_eq!(
            (c.tcp_max_connections, c.tcp_idle_timeout_seconds),
            (256, 10)
        );
        assert_eq!(c.http_max_connections, 256);
        assert!(c.recursion_allow_from.is_empty());
        let c = ok(&with(
            r#""TCPMAXCONNECTIONS": 4, "tcpIdleTimeoutSeconds": 1, "httpMaxConnections": 2,
               "recursionAllowFrom": ["10.1.2.3/8", "::1"]"#,
        ))
        .0;
        assert_eq!((c.tcp_max_connections, c.tcp_idle_timeout_seconds), (4, 1));
        assert_eq!(c.http_max_connections, 2);
        let allow: Vec<String> = c
            .recursion_allow_from
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(allow, ["10.0.0.0/8", "::1/128"]);
        let j = c.masked_json();
        assert_eq!(
            j["RecursionAllowFrom"],
            serde_json::json!(["10.0.0.0/8", "::1/128"])
        );
        assert_eq!(j["TcpIdleTimeoutSeconds"], 1);
        let mut again = c.clone();
        again.validate().unwrap();
        assert_eq!(again.recursion_allow_from, c.recursion_allow_from);
        err(
            &with(r#""tcpMaxConnections": 0"#),
            &["tcpMaxConnections: 0 is out of range"],
        );
        err(
            &with(r#""httpMaxConnections": 16385"#),
            &["httpMaxConnections: 16385"],
        );
        err(
            &with(r#""tcpIdleTimeoutSeconds": 0"#),
            &["tcpIdleTimeoutSeconds: 0"],
        );
        err(
            &with(r#""tcpIdleTimeoutSeconds": "10""#),
            &["tcpIdleTimeoutSeconds"],
        );
        err(
            &with(r#""recursionAllowFrom": ["10.0.0.0/33"]"#),
            &["recursionAllowFrom", "10.0.0.0/33"],
        );
        err(
            &with(r#""recursionAllowFrom": "10.0.0.0/8""#),
            &["recursionAllowFrom"],
        );
        let mut c = default_config();
        c.state_file = Some(PathBuf::from("s.json"));
        c.tcp_idle_timeout_seconds = 0;
        assert!(c.validate().is_err());
        c.tcp_idle_timeout_seconds = 10;
        c.http_max_connections = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn new_keys_are_validated() {
        err(
            &with(r#""ednsUdpSize": 511"#),
            &["ednsUdpSize: 511 is out of range 512..=65535"],
        );
        err(&with(r#""ednsUdpSize": 65536"#), &["ednsUdpSize: 65536"]);
        err(
            &with(r#""stateMaxBytes": 0"#),
            &["stateMaxBytes: 0 must be > 0"],
        );
        err(
            &with(r#""healthFilter": "on""#),
            &[r#"healthFilter: "on" is not valid"#],
        );
        err(
            &with(r#""refreshPriority": "low""#),
            &[
                r#"refreshPriority: "low" is not valid"#,
                "\"idle\" or \"normal\"",
            ],
        );
        err(
            &with(r#""workers": 100000"#),
            &["workers: 100000 is out of range"],
        );
        err(
            &with(r#""pinWorkers": "yes""#),
            &[r#""pinWorkers""#, "true or false"],
        );
        err(
            &with(r#""udpCoalesceMicros": 5000"#),
            &["udpCoalesceMicros: 5000 is out of range 0..=1000"],
        );
        err(
            &with(r#""udpCoalesceMicros": -1"#),
            &["udpCoalesceMicros: -1 is out of range"],
        );
        err(&with(r#""stateFile": 1"#), &[r#""stateFile""#, "a string"]);
    }

    #[test]
    fn validation_follows_spec_order() {
        // Each step's fields break exactly one rule; with all of them present the first in
        // §2.2 order must be reported, then the next once that one is fixed, and so on.
        let steps = [
            (r#""dnson": false, "httpon": false"#, "either DNS or HTTP"),
            (r#""masters": ["x"]"#, "masters:"),
            (r#""resolvers": ["y"]"#, "resolvers:"),
            (r#""IPSources": []"#, "IPSources:"),
            (r#""stateTimeoutSeconds": 0"#, "stateTimeoutSeconds:"),
            (r#""domain": "a..b""#, "domain:"),
            (r#""SOAMname": """#, "SOAMname:"),
            (r#""keyFile": "/k.pem""#, "certFile:"),
            (r#""mesosAuthentication": "z""#, "mesosAuthentication:"),
            (r#""healthFilter": "z""#, "healthFilter:"),
        ];
        for first in 0..steps.len() {
            let fields: Vec<&str> = steps[first..].iter().map(|(f, _)| *f).collect();
            let json = format!(r#"{{"stateFile": "s.json", {}}}"#, fields.join(", "));
            err(&json, &[steps[first].1]);
        }
    }

    #[test]
    fn config_validate_rechecks_code_built_values() {
        let mut c = default_config();
        c.state_file = Some(PathBuf::from("s.json"));
        c.refresh_seconds = 0;
        let msg = c.validate().expect_err("refresh 0").to_string();
        assert_eq!(msg, "refreshSeconds: 0 must be > 0");
        c.refresh_seconds = u64::MAX;
        let msg = c.validate().expect_err("refresh huge").to_string();
        assert!(
            msg.starts_with("refreshSeconds: 9223372036854775807 is out of range"),
            "{msg}"
        );
        c.refresh_seconds = 1;
        c.edns_udp_size = 100;
        let msg = c.validate().expect_err("edns").to_string();
        assert!(msg.starts_with("ednsUdpSize: 100 is out of range"), "{msg}");
        c.edns_udp_size = 1232;
        c.workers = 5000;
        assert!(c.validate().is_err());
        c.workers = 2;
        c.udp_coalesce_us = 1_001;
        let msg = c.validate().expect_err("coalesce").to_string();
        assert!(
            msg.starts_with("udpCoalesceMicros: 1001 is out of range 0..=1000"),
            "{msg}"
        );
        c.udp_coalesce_us = 100;
        c.masters = vec!["[::1]:5050".into(), "[0::1]:5050".into()];
        assert!(c.validate().is_err());
    }

    #[test]
    fn masked_json_masks_the_secret() {
        let (c, _) = ok(&with(
            r#""mesosAuthentication": "basic", "mesosCredentials": {"principal": "p", "secret": "hunter2"}"#,
        ));
        let j = c.masked_json();
        assert_eq!(j["MesosCredentials"]["Principal"], "p");
        assert_eq!(j["MesosCredentials"]["Secret"], "******");
        assert!(!j.to_string().contains("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn masked_json_field_order() {
        let (c, _) =
            ok(r#"{"stateFile": "s.json", "zoneResolvers": {"consul": ["10.0.0.2:8600"]}}"#);
        let j = c.masked_json();
        let keys: Vec<&str> = j
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let want = [
            "RefreshSeconds",
            "Port",
            "Timeout",
            "StateTimeoutSeconds",
            "ZkDetectionTimeout",
            "HttpPort",
            "TTL",
            "SRVRecordDefaultWeight",
            "SOASerial",
            "SOARefresh",
            "SOARetry",
            "SOAExpire",
            "SOAMinttl",
            "SOAMname",
            "SOARname",
            "Masters",
            "ZoneResolvers",
            "Resolvers",
            "IPSources",
            "Zk",
            "Domain",
            "File",
            "Listener",
            "HTTPListener",
            "RecurseOn",
            "DnsOn",
            "HttpOn",
            "ExternalOn",
            "EnforceRFC952",
            "SetTruncateBit",
            "EnumerationOn",
            "MesosHTTPSOn",
            "CACertFile",
            "CertFile",
            "KeyFile",
            "MesosCredentials",
            "IAMConfigFile",
            "MesosAuthentication",
            "StateFile",
            "EdnsUdpSize",
            "StateMaxBytes",
            "CacheSize",
            "HealthFilter",
            "RefreshPriority",
            "PtrOn",
            "MesosHTTPSInsecure",
            "MaxStalenessSeconds",
            "Workers",
            "PinWorkers",
            "UdpCoalesceMicros",
            "Forwarders",
            "ForwardQueue",
            "TransferAllowFrom",
            "NotifyTargets",
            "TsigKeys",
            "TcpMaxConnections",
            "TcpIdleTimeoutSeconds",
            "HttpMaxConnections",
            "RecursionAllowFrom",
        ];
        assert_eq!(keys, want);
        assert_eq!(j["Masters"], Value::Null);
        assert_eq!(j["Resolvers"], serde_json::json!(["8.8.8.8"]));
        assert_eq!(
            j["ZoneResolvers"],
            serde_json::json!({"consul": ["10.0.0.2:8600"]})
        );
        assert_eq!(
            j["IPSources"],
            serde_json::json!(["netinfo", "mesos", "host"])
        );
        assert_eq!(
            j["MesosCredentials"],
            serde_json::json!({"Principal": "", "Secret": ""})
        );
        assert_eq!(j["PinWorkers"], Value::Null);
    }
}
