//! Named pipes across real processes: the atomic claim of a Listening
//! instance (SEM-043), process ids (SEM-137, SEM-138), security against
//! another uid (SEM-149, SEM-150), processes killed with SIGKILL while
//! their peers wait on them, instances of one name created by several
//! processes (`members`), client ends passed to other processes
//! (`handoff`), and `status` and `list` (`status`).
//!
//! Children are this test binary run again (see [`common::named::Kid`]) as
//! one of the `child_*` functions each module lists in `common::tests!` at
//! its end; child names are unique in the binary. A child reports success
//! with exit status [`common::named::CHILD_OK`], so a child that failed or
//! was not found cannot pass for one that worked.
//!
//! Checked for process-wide state of the test process: uids are dropped and
//! descriptor limits lowered in children only, so the modules share one
//! process safely. Two binaries stay apart: `named_connect` keeps its
//! forking tests and its tests that close a client and look at once apart
//! (a child holds every descriptor of this process until it execs), which
//! only works within one binary; `abuse` (in the `stress` binary) floods the process's request
//! threads with clients forwarded to silent members, and while it does,
//! clients forwarded to the members of this binary's tests get `PipeBusy`
//! (seen when it was a module here).

#[path = "../common/mod.rs"]
mod common;

mod claim_and_pids;
mod handoff;
mod killed;
mod members;
mod other_uid;
mod status;
mod support;

common::main! {
    modules: [
        claim_and_pids,
        handoff,
        killed,
        other_uid,
        status,
        members::attach,
        members::creation,
        members::hostile,
        members::killed,
        members::other_uid,
    ],
}
