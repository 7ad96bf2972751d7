//! The `mesos-dns` binary: CLI parsing, logging, exit codes. All work lives in the library.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {}
