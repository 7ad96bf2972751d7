//! Pure record generation: a Mesos state document plus the config become the record set of
//! the zone. Never performs network I/O itself: host name lookups go through a
//! [`generator::HostResolver`] the caller supplies.

pub mod generator;
pub mod ip_sources;
pub mod labels;
pub mod reverse;
