//! Waiting under the caller's control, across real processes: cancelling
//! blocked calls from another thread (`cancel`, Windows' `CancelIoEx`, spec
//! 7.4), including calls queued behind another call of the same handle
//! (`cancel_queued`), with two writes pending on one ring
//! (`cancel_pending_pair`), and readiness descriptors for event loops
//! (`readiness`).
//!
//! Children are this test binary run again (`child_*`); each module lists
//! its tests and children with `common::tests!`, child names unique in the
//! binary.

#[path = "../common/mod.rs"]
mod common;

mod cancel;
mod cancel_pending_pair;
mod cancel_queued;
mod readiness;

common::main! {
    modules: [cancel, cancel_pending_pair, cancel_queued, readiness],
}
