//! End-to-end tests of the `shmpipe` binary, one module per area: the
//! benchmark (`bench`; its async rows: `bench_async`), the pipe subcommands
//! (`pipes`), errors that name the cause and the fix (`errors`), the exit
//! status of `send` (`send_delivery`), the trust flags across users
//! (`trust`) and remote pipes through `shmpipe gateway` (`gateway`).
//!
//! Every module starts real `shmpipe` processes; none changes process-wide
//! state of the test process (uids change in the children it starts), so
//! they share one process.

#[path = "../common/mod.rs"]
mod common;

mod bench;
mod bench_async;
mod bench_remote;
mod errors;
mod gateway;
mod pipes;
mod send_delivery;
mod trust;
