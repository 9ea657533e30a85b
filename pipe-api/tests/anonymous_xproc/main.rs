//! Anonymous pipes across real processes: ends inherited, handed off and
//! killed (`ends_across_processes`: SEM-021, SEM-022, SEM-023, SEM-026,
//! SEM-067), and redirected child stdio (`redirect`).
//!
//! Children are this test binary run again (`common::child_command`); each
//! module lists its tests and children with `common::tests!` at its end.
//! Signal dispositions (SIGPIPE) are changed in children only, and nothing
//! else process-wide in the test process, so the modules share one process
//! safely.

#[path = "../common/mod.rs"]
mod common;

mod ends_across_processes;
mod redirect;
mod zero_copy;

common::main! {
    modules: [ends_across_processes, redirect, zero_copy],
}
