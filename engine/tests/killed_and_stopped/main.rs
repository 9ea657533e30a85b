//! Peer processes that die or stop at awkward moments, across real
//! processes: SIGKILL at random points of writes and reads (`kill`), holders
//! of the admission locks that are stopped, killed, forked or in another
//! pid namespace (`lock_holders`), and nonblocking calls while a stopped
//! process holds the lock (`nonblocking_locks`).
//!
//! Children are this test binary re-executed (see `common`); each module
//! lists its tests and children with `common::tests!` at its end, and child
//! names are unique in the binary (the harness checks). No test changes
//! process-wide state of the test process: namespaces (`unshare`), forks
//! without exec, `PR_SET_PDEATHSIG` and SIGSTOP all happen in children, so
//! the modules share one process safely.

#[path = "../common/mod.rs"]
mod common;

mod kill;
mod lock_holders;
mod nonblocking_locks;

common::main! {
    modules: [kill, lock_holders, nonblocking_locks],
}
