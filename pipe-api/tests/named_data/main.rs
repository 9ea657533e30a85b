//! Named pipes: the data path (spec sections 4.6–4.16, 5 and 6), one test
//! per testable behaviour SEM-059 to SEM-135, plus the ported Windows
//! samples (`examples/named_*.rs`) run against each other across processes.
//!
//! Unless a test says otherwise the pipe has the spec's defaults (section
//! 9): Duplex, max instances 1, quotas 1024 each way, client opened for
//! reading and writing.
//!
//! Not here (listed by number only, so that the coverage tool does not count
//! them): behaviours 065, 119, 121, 131 and the asynchronous half of 100 need
//! the async API or cancellation, which the crate does not have yet; SEM-067, SEM-070 and SEM-081 concern one end held by several
//! processes, which needs client-end passing between processes, so they run
//! with threads holding duplicates of the end.
//!
//! Waiting: "still pending" is checked once the operation's thread sleeps
//! in the kernel (`Pending::assert_pending`: a wrong implementation returns
//! instead of going to sleep), "completes at once" as returning instead of
//! going to sleep (`Pending::settle`), and everything that must happen is
//! given [`QUICK`] or [`HANG`], so load on the machine cannot make a correct
//! implementation fail.
//!
//! Processes: children are this test binary run again as one of the
//! `child_*` functions each module lists in `common::tests!` at its end
//! (see `common`); child names are unique in the binary.
//!
//! [`QUICK`]: support::QUICK
//! [`HANG`]: common::HANG

#[path = "../common/mod.rs"]
mod common;

mod byte_mode;
mod disconnect;
mod flush;
mod message_mode;
mod peek;
mod quota;
mod samples;
mod support;
mod transact;
mod zero_copy;

common::main! {
    modules: [byte_mode, disconnect, flush, message_mode, peek, quota, samples, transact, zero_copy],
}
