//! Killed and stopped peers across real processes: what a SIGKILLed peer
//! leaves behind (`killed_peers`) and how soon a blocked end hears of it
//! (`killed_notice`), messages cut by a kill or a stop
//! (`cut_messages`), pending writes whose process dies, with duplicated
//! ends (`anonymous_pending`), several at once on one ring
//! (`pending_claims`), and across `fork` without `exec`
//! (`pending_liveness`).
//!
//! Children are this test binary run again (`common::child_command`,
//! `common::named::Kid`); each module lists its tests and children with
//! `common::tests!` at its end, and child names are unique in the binary.
//! No test changes process-wide state of the test process (signal
//! dispositions and the like are changed in children only).

#[path = "../common/mod.rs"]
mod common;

mod anonymous_pending;
mod cut_messages;
mod killed_notice;
mod killed_peers;
mod pending_claims;
mod pending_liveness;

common::main! {
    modules: [
        anonymous_pending,
        cut_messages,
        killed_notice,
        killed_peers,
        pending_claims,
        pending_liveness,
    ],
}
