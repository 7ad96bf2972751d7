//! The integration-test binary: starts the real `mesos-dns` binary and talks to it over real
//! sockets. Modules are added per area.
