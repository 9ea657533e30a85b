//! Another local user against the pipes, across real processes: who may
//! serve a name (`trust`: squatting, forged link packets), attacks on the
//! rendezvous (`attacks`: floods, descriptor exhaustion, garbage,
//! segments through `/proc`), and owner-only segment memfds
//! (`segment_mode`).
//!
//! The test process runs as root; attackers and other users are children
//! that drop to `nobody`. Without root the tests say why and return, except
//! under `CI=true`, where they fail. No test changes process-wide state of
//! the test process: the descriptor limits (`set_nofile`) and uids are
//! changed in children only, so the modules share one process safely.

#[path = "../common/mod.rs"]
mod common;

mod attacks;
mod segment_mode;
mod trust;

common::main! {
    modules: [attacks, segment_mode, trust],
}
