//! Everything that models or talks to the Mesos masters. Knows nothing of DNS.

pub mod auth;
pub mod fetch;
pub mod hosts;
pub mod state;
pub mod tls;
pub mod zk;
