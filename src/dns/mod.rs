//! DNS serving: the allocation-free wire format, the answer rules, the UDP workers with their
//! batched I/O and receive coalescing, DNS over TCP, and zone transfers (AXFR/IXFR, TSIG, NOTIFY).

pub mod answer;
pub mod batch;
pub mod coalesce;
pub mod fragments;
pub mod notify;
pub mod tcp;
pub mod tsig;
pub mod wire;
pub mod worker;
pub mod xfr;
