//! Configuration: reads an unchanged Mesos-DNS `config.json` into a [`RawConfig`], then
//! validates it into a typed [`Config`].
//!
//! Owns every key of the original (behaviour reference §2.1) with its default and validation
//! rule, plus the keys this product adds (product.md). Keys match case-insensitively, unknown
//! keys are warned about (errors under `--strict`), and an explicit JSON `null` keeps the
//! default. Every error names the key and the bad value. This module never touches the network;
//! the only file it reads besides the config itself is `/etc/resolv.conf` (for `resolvers: []`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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
}
