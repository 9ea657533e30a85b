//! The async ends (`shmpipe::tokio`, feature `tokio`, spec section 7) across
//! real processes: anonymous ends (`anonymous`) and named pipes (`named`):
//! pending operations, what dropping them does, immediate results, and
//! futures pending on a peer process that is SIGKILLed.
//!
//! Children are this test binary run again (`child_*`); each module lists
//! its tests and children with `common::tests!`, child names unique in the
//! binary.

#[path = "../common/mod.rs"]
mod common;

mod anonymous;
mod named;
mod support;

common::main! {
    modules: [anonymous, named],
}
