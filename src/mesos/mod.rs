//! Everything that models or talks to the Mesos masters. Knows nothing of DNS.

pub mod fetch;
pub mod hosts;
pub mod state;
