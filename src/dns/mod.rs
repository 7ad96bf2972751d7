//! DNS serving: the allocation-free wire format, the answer rules, the UDP workers with their
//! batched I/O, and DNS over TCP.

pub mod answer;
pub mod batch;
pub mod tcp;
pub mod wire;
pub mod worker;
