//! Blocking channel operations under every [`WaitPolicy`]: deadlines, wake
//! ups by the peer's progress, and the peer check that ends a wait when the
//! other end closes (dropped in another thread, SIGKILLed in another process,
//! or its last `try_clone`d handle gone).
//!
//! Nothing here measures time. Sleeps only give a waiter the chance to be
//! blocked before its peer acts (the outcome must be the same if it is not);
//! a watchdog turns a lost wake-up into an abort instead of a hung job. The
//! only clock check is the deadline contract itself: `TimedOut` never comes
//! before the deadline.
//!
//! One policy has a park slice of a minute: a waiter under it sleeps until it
//! is notified, so a lost wake-up or a missed hang-up hint shows as a hang
//! rather than as a late success after the next slice.

#[path = "../common/mod.rs"]
mod common;

mod deadlines;
mod peer_processes;
mod support;
mod wakeups;

common::main! {
    modules: [deadlines, peer_processes, wakeups],
}
