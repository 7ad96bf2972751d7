//! The integration-test binary: starts the real `mesos-dns` binary and talks to it over real
//! loopback sockets, fed by a fake Mesos master or a state file. One module per area: the
//! answer rules (`answers`), the UDP workers' receive coalescing (`coalesce`), state refresh and failure handling (`refresh`), the command line
//! (`cli`), the real `dig` client (`dig`), the HTTP API (`http`), talking to the masters over
//! HTTPS with authentication (`masters`), ZooKeeper leader detection (`zk`) and zone transfers to
//! a real NSD secondary (`xfr`), health filtering, PTR, hot reload and the deployment files
//! (`features`), and the refresh thread's priority and its watchdog (`priority`); `harness` and
//! `fake_master` are the tools.

mod answers;
mod cli;
mod coalesce;
mod dig;
mod fake_master;
mod features;
mod forward;
mod hardening;
mod harness;
mod http;
mod masters;
mod priority;
mod refresh;
mod xfr;
mod zk;
