//! DNS serving: the allocation-free wire format and the answer rules.

pub mod wire;
pub mod answer;
